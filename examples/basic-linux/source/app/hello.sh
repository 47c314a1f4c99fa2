#!/bin/bash
echo "Hello from a build that ran on its own EC2 instance."

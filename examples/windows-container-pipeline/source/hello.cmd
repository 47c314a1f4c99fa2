@echo off
echo Hello from a Windows container built by CodePipeline on EC2.

#!/bin/bash
# The sample build (the action's Command is "bash build.sh"): replace it with yours. It runs on the builder in the
# unzipped source, with PipelineName, PipelineExecutionId and JobId in the environment; dist/ becomes the output
# artifact (OutputArtifactPath). Any non-zero exit fails the action with this script's last lines of output.
set -euo pipefail

rm -rf dist
mkdir -p dist
cp -R app dist/app
{
  echo "pipeline:  ${PipelineName:-local}"
  echo "execution: ${PipelineExecutionId:-local}"
  echo "built on:  $(uname -srm)"
  echo "built at:  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >dist/build-info.txt
(cd dist && find . -type f -print0 | sort -z | xargs -0 sha256sum >../SHA256SUMS)
mv SHA256SUMS dist/SHA256SUMS
echo "build: $(wc -l <dist/SHA256SUMS) files in dist/"

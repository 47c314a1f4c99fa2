#!/bin/bash
# Linux step of the build document. Every parameter arrives as an environment variable SSM_<Name>
# (interpolationType ENV_VAR): values are data, never script, whatever quotes or $() they contain.
# shellcheck disable=SC2154  # the SSM_* variables are set by the SSM Agent
# The agent runs the step with sh; re-run with bash where sh is another shell (dash on Debian and Ubuntu).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
umask 022

fail() {
  # fail <exit code> <message>: one clear line on stderr, then stop.
  echo "ec2-action: $2" >&2
  exit "$1"
}

if [ -z "${SSM_JobId+x}" ]; then
  fail 64 "the SSM Agent did not pass parameters as environment variables; SSM Agent 3.3.2746.0 or newer is required"
fi

# The environment the build command sees.
export JobId="$SSM_JobId"
export PipelineName="$SSM_PipelineName"
export PipelineExecutionId="$SSM_PipelineExecutionId"
export PipelineArn="$SSM_PipelineArn"

default_workspace="${TMPDIR:-/var/tmp}/codepipeline-ec2-action/${SSM_JobId}"
case "$SSM_WorkingDirectory" in
  "") workspace="$default_workspace" ;;
  /*) workspace="$SSM_WorkingDirectory" ;;
  *) workspace="$default_workspace/$SSM_WorkingDirectory" ;;
esac
export WORKSPACE="$workspace"

scratch="$(mktemp -d)"
trap 'rm -rf -- "$scratch"' EXIT

unpack() {
  # unpack <zip> <directory>
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o -- "$1" -d "$2"
  else
    python3 -m zipfile -e "$1" "$2"
  fi
}

pack() {
  # pack <path> <zip>: a directory is zipped by its contents, a file by its name.
  (
    if [ -d "$1" ]; then
      cd -- "$1" && python3 -c 'import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk("."):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            z.write(path, os.path.relpath(path, "."))' "$2"
    else
      cd -- "$(dirname -- "$1")" && python3 -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[2])' "$2" "$(basename -- "$1")"
    fi
  )
}

mkdir -p -- "$workspace" || fail 65 "cannot create the working directory '$workspace'"
cd -- "$workspace"
echo "ec2-action: job $JobId of pipeline '$PipelineName' in $workspace"

if [ -n "$SSM_InputBucket" ]; then
  echo "ec2-action: downloading the input artifact s3://$SSM_InputBucket/$SSM_InputKey"
  aws s3api get-object --bucket "$SSM_InputBucket" --key "$SSM_InputKey" "$scratch/input.zip" >/dev/null \
    || fail 66 "cannot download the input artifact s3://$SSM_InputBucket/$SSM_InputKey (does the builder role allow s3:GetObject and kms:Decrypt on it?)"
  unpack "$scratch/input.zip" "$workspace" || fail 66 "the input artifact is not a valid zip file"
fi

printf '%s\n' "$SSM_Command" >"$scratch/build-command.sh"
echo "ec2-action: running the build command"
set +e
bash -e -o pipefail -- "$scratch/build-command.sh"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  fail "$status" "the build command exited with code $status"
fi
echo "ec2-action: the build command succeeded"

if [ -n "$SSM_OutputArtifactPath" ]; then
  output="$workspace/$SSM_OutputArtifactPath"
  if [ ! -e "$output" ]; then
    fail 67 "OutputArtifactPath '$SSM_OutputArtifactPath' does not exist in $workspace after the build"
  fi
  pack "$output" "$scratch/output.zip" || fail 68 "cannot zip OutputArtifactPath '$SSM_OutputArtifactPath'"
  encryption=(--server-side-encryption aws:kms)
  if [ -n "$SSM_KmsKeyId" ]; then
    encryption+=(--ssekms-key-id "$SSM_KmsKeyId")
  fi
  echo "ec2-action: uploading the output artifact to s3://$SSM_OutputBucket/$SSM_OutputKey"
  aws s3api put-object --bucket "$SSM_OutputBucket" --key "$SSM_OutputKey" --body "$scratch/output.zip" \
    "${encryption[@]}" >/dev/null \
    || fail 69 "cannot upload the output artifact to s3://$SSM_OutputBucket/$SSM_OutputKey (does the builder role allow s3:PutObject and kms:GenerateDataKey on it?)"
fi
echo "ec2-action: done"

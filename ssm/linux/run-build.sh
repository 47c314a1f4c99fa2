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

# Every job's default workspace is a folder of this root named by its job id.
workspace_root="${TMPDIR:-/var/tmp}/codepipeline-ec2-action"
default_workspace="$workspace_root/${SSM_JobId}"
case "$SSM_WorkingDirectory" in
  "") workspace="$default_workspace" ;;
  /*) workspace="$SSM_WorkingDirectory" ;;
  *) workspace="$default_workspace/$SSM_WorkingDirectory" ;;
esac
export WORKSPACE="$workspace"

# A pooled instance (Pooled=true) runs one job after another: each job's workspace is removed when it ends, and the
# reset command (ResetCommand) runs after the upload. When either fails, a last line on stderr asks the orchestrator
# to retire the instance (outcome.RETIRE_PREFIX); the step's exit status stays the build's. An absolute
# WorkingDirectory is the user's own place and is not removed.
pooled="${SSM_Pooled:-false}"
reset_command="${SSM_ResetCommand:-}"
retire_reason=""

remove_tree() {
  # remove_tree <path>: delete it and everything in it, read-only folders included; a link is removed, never followed
  # (chmod -R skips the links it meets inside).
  if [ -L "$1" ]; then
    rm -f -- "$1"
  elif [ -e "$1" ]; then
    chmod -R u+rwX -- "$1" 2>/dev/null
    rm -rf -- "$1"
  fi
}

finish() {
  # The EXIT trap, on success and failure alike: the pooled clean-up, then the scratch folder; exits with the build's
  # status whatever the clean-up does.
  local status=$? code=0
  set +e
  if [ "$pooled" = true ]; then
    cd / || true
    if ! remove_tree "$default_workspace"; then
      retire_reason="${retire_reason:-cannot remove the workspace $default_workspace}"
    fi
    if [ -n "$reset_command" ]; then
      printf '%s\n' "$reset_command" >"$scratch/reset-command.sh"
      echo "ec2-action: running the reset command"
      bash -e -o pipefail -- "$scratch/reset-command.sh"
      code=$?
      if [ "$code" -ne 0 ]; then
        retire_reason="the reset command exited $code"
      fi
    fi
    if [ -n "$retire_reason" ]; then
      echo "ec2-action: retire-instance: $retire_reason" >&2
    fi
  fi
  rm -rf -- "$scratch"
  exit "$status"
}

scratch="$(mktemp -d)"
trap finish EXIT

if [ "$pooled" = true ] && [ -d "$workspace_root" ]; then
  # Workspaces other jobs left behind (a step stopped before its clean-up ran) never reach this job.
  shopt -s nullglob dotglob
  leftovers=("$workspace_root"/*)
  shopt -u nullglob dotglob
  for leftover in "${leftovers[@]}"; do
    if [ "$leftover" != "$default_workspace" ]; then
      echo "ec2-action: removing the leftover workspace $leftover"
      remove_tree "$leftover" || retire_reason="cannot remove the leftover workspace $leftover"
    fi
  done
fi

unpack() {
  # unpack <zip> <directory>, with unzip where the image has it. Python stands in for it otherwise and keeps what
  # unzip keeps: the permission bits of entries made on Unix (not setuid, setgid or sticky; others get 0644, or 0444
  # if read-only), symbolic links (their targets as stored), modification times. It refuses (the job fails) any
  # entry that would land outside the directory: an absolute name, a '..' component, or a path through a link.
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o -- "$1" -d "$2"
  else
    python3 -c 'import os, shutil, stat, sys, time, zipfile
def refuse(entry, why):
    sys.exit("ec2-action: refusing the zip entry %r: %s" % (entry.filename, why))
directories = []
try:
    with zipfile.ZipFile(sys.argv[1]) as archive:
        for entry in archive.infolist():
            parts = [part for part in entry.filename.split("/") if part not in ("", ".")]
            if entry.filename.startswith("/") or ".." in parts:
                refuse(entry, "it points outside the working directory")
            if not parts:
                continue
            mode = entry.external_attr >> 16 if entry.create_system == 3 else 0
            directory = entry.is_dir() or stat.S_ISDIR(mode)
            path = sys.argv[2]
            for depth, part in enumerate(parts, 1):
                path = os.path.join(path, part)
                if os.path.islink(path) and (depth < len(parts) or directory):
                    refuse(entry, "it goes through a symbolic link")
            stamp = time.mktime(entry.date_time + (0, 0, -1))
            if directory:
                os.makedirs(path, exist_ok=True)
                directories.append((path, mode, stamp))
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.islink(path) or os.path.isfile(path):
                os.unlink(path)
            if stat.S_ISLNK(mode):
                os.symlink(os.fsdecode(archive.read(entry)), path)
                continue
            created = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with archive.open(entry) as source, os.fdopen(created, "wb") as target:
                shutil.copyfileobj(source, target)
            os.chmod(path, mode & 0o777 or (0o444 if entry.external_attr & 1 else 0o644))
            os.utime(path, (stamp, stamp))
    for path, mode, stamp in sorted(directories, reverse=True):
        if mode & 0o777:
            os.chmod(path, mode & 0o777)
        os.utime(path, (stamp, stamp))
except Exception as error:
    sys.exit("ec2-action: %s" % error)' "$1" "$2"
  fi
}

pack() {
  # pack <path> <zip>: a directory is zipped by its contents (folders included), a file by its name. Every entry
  # keeps its Unix permission bits; a symbolic link inside a directory is stored as a link (as `zip -y` does), never
  # followed, so nothing outside <path> ends up in the artifact.
  (
    if [ -d "$1" ]; then
      cd -- "$1" && python3 -c 'import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk("."):
        dirs.sort()
        for name in dirs + sorted(files):
            path = os.path.join(root, name)
            if os.path.islink(path):
                link = zipfile.ZipInfo(os.path.relpath(path, "."))
                link.external_attr = os.lstat(path).st_mode << 16
                z.writestr(link, os.readlink(path))
            else:
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
  # The SSM Agent reads exit code 194 of a Linux step itself: it reboots the instance and runs the whole step again.
  # A build command that exits 194 fails the step with 1 instead (the message keeps its code).
  step_status=$status
  if [ "$status" -eq 194 ]; then
    step_status=1
  fi
  fail "$step_status" "the build command exited with code $status"
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

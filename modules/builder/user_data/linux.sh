#!/bin/bash
# First boot of a Linux builder (the launch template's user data): the builder shuts itself down, and so terminates
# (the template's shutdown behaviour), at the deadline its launch gave it in the ec2-action:deadline tag: the build's
# timeout, its registration window and a grace period. The last line of defence against a builder that outlives its
# job when everything else failed (the reaper is the one before it). A pool member carries no deadline (it outlives
# its builds): the script then does nothing.
#
# The tag is read from the instance metadata (IMDSv2; the template makes instance tags readable there), because EC2
# Fleet, which launches every builder, takes no user data per launch.
set -euo pipefail

readonly IMDS=${EC2_ACTION_IMDS_URL:-http://169.254.169.254/latest}
readonly DEADLINE_URL=$IMDS/meta-data/tags/instance/ec2-action:deadline
readonly ATTEMPTS=30
readonly RETRY_SECONDS=${EC2_ACTION_IMDS_RETRY_SECONDS:-2}

log() {
  echo "ec2-action self-shutdown: $*" >&2
  logger -t ec2-action "self-shutdown: $*" 2>/dev/null || true
}

# Prints the deadline tag's value. Exit status 0: read; 3: the instance has no such tag; 1: the instance metadata did
# not answer (early in the boot the network may not be up yet: the caller retries).
read_deadline() {
  local token body status
  token=$(curl --silent --fail --max-time 2 --request PUT "$IMDS/api/token" \
    --header "X-aws-ec2-metadata-token-ttl-seconds: 300") || return 1
  body=$(mktemp)
  status=$(curl --silent --max-time 2 --output "$body" --write-out '%{http_code}' \
    --header "X-aws-ec2-metadata-token: $token" "$DEADLINE_URL") || status=000
  case "$status" in
    200) cat "$body" ;;
    404) status=3 ;;
    *) status=1 ;;
  esac
  rm -f "$body"
  [[ "$status" == 200 ]] || return "$status"
}

main() {
  local deadline="" attempt result
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    result=0
    deadline=$(read_deadline) || result=$?
    case "$result" in
      0) break ;;
      3)
        log "no ec2-action:deadline tag: a pool member, which outlives its builds"
        return 0
        ;;
    esac
    sleep "$RETRY_SECONDS"
  done
  if [[ -z "$deadline" ]]; then
    log "the instance metadata did not answer: the reaper ends this builder if it outlives its job"
    return 1
  fi

  local deadline_epoch now minutes
  deadline_epoch=$(date --date "$deadline" +%s)
  now=$(date +%s)
  minutes=$(((deadline_epoch - now + 59) / 60))
  if ((minutes < 0)); then
    minutes=0
  fi
  log "shutting down at $deadline (in $minutes minutes)"
  shutdown -h "+$minutes"
}

main "$@"

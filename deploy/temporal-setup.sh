#!/bin/sh
# Readies a self-hosted Temporal for magsag, as `magsag server` does for the embedded one:
# the namespace, with the retention runs stay visible for, and magsag's search attributes
# (contracts/constants.py). Idempotent: docker-compose.yml runs it at every `up`.
# The temporal CLI reads TEMPORAL_ADDRESS (and TLS, API key) from the environment.
set -eu

namespace=${TEMPORAL_NAMESPACE:-default}
retention=${MAGSAG_RETENTION:-720h}
attempts=${SETUP_ATTEMPTS:-60}

# Retries a command until it succeeds: a new server or namespace takes a while to answer.
retry() {
  tries=1
  until "$@" >/dev/null 2>&1; do
    if [ "$tries" -ge "$attempts" ]; then
      echo "temporal-setup: gave up after $attempts tries: $*" >&2
      "$@"  # once more, showing its error
      exit 1
    fi
    tries=$((tries + 1))
    sleep 2
  done
}

retry temporal operator cluster health
if temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
  temporal operator namespace update --namespace "$namespace" --retention "$retention"
else
  temporal operator namespace create --namespace "$namespace" --retention "$retention"
fi
retry temporal operator search-attribute list --namespace "$namespace"

existing=$(temporal operator search-attribute list --namespace "$namespace")
for attribute in MagsagRepo:Keyword MagsagPlan:Keyword MagsagRunStatus:Keyword \
  MagsagResumedFrom:Keyword MagsagWaiting:Keyword MagsagTasksDone:Int \
  MagsagTasksFailed:Int MagsagCostUsd:Double; do
  name=${attribute%%:*}
  if ! printf '%s\n' "$existing" | grep -qw "$name"; then
    temporal operator search-attribute create --namespace "$namespace" \
      --name "$name" --type "${attribute#*:}"
  fi
done
echo "temporal-setup: namespace $namespace ready (retention $retention, magsag's search attributes)"

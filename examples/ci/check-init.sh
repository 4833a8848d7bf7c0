#!/usr/bin/env bash
# Gate a build on freshly initialized models: fail if any weight does not look like its initializer.
# Usage: examples/ci/check-init.sh MODEL.keras [MODEL.keras ...]
# Exit codes: 0 all passed, 3 a check failed, 1 a model could not be read, 2 bad usage.
set -u
status=0
for model in "$@"; do
    initcli check "$model" --rules "$(dirname "$0")/rules.yaml"
    code=$?
    if [ "$code" -gt "$status" ]; then status=$code; fi
done
exit "$status"

#!/usr/bin/env bash
# Gate a build on freshly initialized models: fail if any weight does not look like its initializer.
# Usage: examples/ci/check-init.sh MODEL.keras [MODEL.keras ...]   (quoted globs work too: 'models/*.keras')
# One initcli run checks every model (one start-up); each model is reported, then a total.
# Exit codes: 0 all passed, 3 a check failed, 1 a model could not be read, 2 bad usage.
set -u
exec initcli check "$@" --rules "$(dirname "$0")/rules.yaml"

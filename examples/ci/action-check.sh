#!/usr/bin/env bash
# The step of action.yml (the composite GitHub Action): `initcli check` on the models, as annotations.
# Environment: INITCLI_MODELS (paths or globs, separated by spaces or new lines; initcli expands the
# globs itself, `**` included) and INITCLI_ARGS (other `initcli check` options, split on spaces).
# Writes `exit-code=N` to $GITHUB_OUTPUT when set, and exits with initcli's code: 0 passed,
# 3 a check failed, 1 a model could not be read, 2 bad usage (no models given included).
set -u -f  # -f: the shell expands no glob; initcli does
read -r -d '' -a models <<<"${INITCLI_MODELS:-}" || true
read -r -a args <<<"${INITCLI_ARGS:-}" || true
if [ "${#models[@]}" -eq 0 ]; then
  echo "::error title=initcli::no models given (the action's models input is empty)"
  code=2
else
  code=0
  python -m initcli check "${models[@]}" "${args[@]}" --format github || code=$?
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "exit-code=$code" >>"$GITHUB_OUTPUT"
fi
exit "$code"

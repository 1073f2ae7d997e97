#!/usr/bin/env bash
# Set up everything (ci/setup.sh: .venv, Java, javabridge, bfdask), lint (ruff, mypy --strict;
# the same checks as .pre-commit-config.yaml) and run the test suite; any finding fails it.
# Extra arguments go to pytest, e.g. `bash ci/test.sh -k fake -x`; BFDASK_LINT=0 skips the lint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
if [ "${BFDASK_LINT:-1}" != 0 ]; then
  start=$SECONDS
  .venv/bin/python -m ruff check bfdask tests
  .venv/bin/python -m ruff format --check bfdask tests
  .venv/bin/python -m mypy  # [tool.mypy] in pyproject.toml: strict, files = bfdask
  echo "lint: ruff and mypy clean in $((SECONDS - start)) s" >&2
fi
exec .venv/bin/python -m pytest "$@"

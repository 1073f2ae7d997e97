#!/usr/bin/env bash
# Set up everything (ci/setup.sh: .venv, Java, javabridge, bfdask) and run the test suite.
# Extra arguments go to pytest, e.g. `bash ci/test.sh -k fake -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
exec .venv/bin/python -m pytest "$@"

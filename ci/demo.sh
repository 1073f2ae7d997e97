#!/usr/bin/env bash
# Set up everything (ci/setup.sh) and run the main job: `bfdask demo`.
# Extra arguments go to `bfdask demo`, e.g. `bash ci/demo.sh --out /tmp/demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
exec .venv/bin/bfdask demo "$@"

#!/usr/bin/env bash
# The second environment: Python 3.13 (pyenv), numpy 2, JPype, Bio-Formats' jar without
# javabridge (ci/setup-jpype.sh), and the test suite run there with BFDASK_BRIDGE=jpype.
# Tests marked `slow` run only in the javabridge environment (ci/test.sh) to keep CI short,
# except the napari viewer test, which runs only here (napari needs numpy 2; a virtual screen
# from ci/setup-display.sh); pass -m "" (or any pytest arguments) to choose otherwise. Lint
# runs in ci/test.sh only.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
python=$(bash ci/setup-jpype.sh) || status=$?
if [ "$status" = 3 ]; then
  echo "ci/test-jpype.sh: skipped (no Python 3.12/3.13 here; see ci/setup-jpype.sh)" >&2
  exit 0
elif [ "$status" != 0 ]; then
  exit "$status"
fi
echo "ci/test-jpype.sh: $python, $(.venv-jpype/bin/python -c 'import numpy, jpype; print("numpy", numpy.__version__, "JPype", jpype.__version__)')" >&2
bash ci/setup-display.sh
if [ "$#" = 0 ]; then
  set -- -m "not slow or napari"
fi
BFDASK_BRIDGE=jpype exec .venv-jpype/bin/python -m pytest "$@"

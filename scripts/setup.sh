#!/usr/bin/env bash
# Set up everything the course needs, idempotently: Debian's packages (with apt where available):
# Fashion-MNIST, and Chromium with its driver for scripts/check_browser.py; and a virtual environment
# .venv with the pinned requirements and course_lib (editable).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
if [ -z "${COURSE_DATA:-}" ] && ! ls /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte* >/dev/null 2>&1; then
  packages+=(dataset-fashion-mnist)
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  packages+=(chromium chromium-driver)
fi
if [ ${#packages[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "==> installing Debian packages: ${packages[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}"
  else
    echo "==> apt-get not available, not installed: ${packages[*]}"
    echo "    course_lib looks for Fashion-MNIST in \$COURSE_DATA or downloads it with torchvision;"
    echo "    scripts/check_browser.py needs /usr/bin/chromedriver and Chromium (or \$CHROMEDRIVER, \$CHROMIUM)"
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements into .venv (torch installs from the local wheel cache where present)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi

#!/usr/bin/env bash
# The course's test command (what CI runs): lint, unit tests and doctests, every notebook executed
# by nbval in quick mode, every notebook run as in Colab (scripts/colab_like.py: a fresh environment holding
# only what its first cell installs), then the book built as readers get it, checked to work offline, and
# every page loaded in headless Chromium (scripts/check_browser.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg
start=$SECONDS
# Each stage prints its own time, so that a CI log tells where the minutes went.
stage() { echo "==> $1 (starting at $((SECONDS - start)) s)"; }

stage "ruff"
ruff check .

stage "pytest: course_lib (with doctests) and tests/"
COURSE_QUICK=1 pytest -q -p no:cacheprovider

stage "nbval: every notebook, quick mode"
COURSE_QUICK=1 pytest -q -p no:cacheprovider --nbval-lax --nbval-cell-timeout=600 --durations=10 notebooks/

stage "Colab-like: each notebook in a fresh environment with only what its first cell installs"
python scripts/colab_like.py

stage "the book"
bash scripts/book.sh
python scripts/check_book.py _build/html
python scripts/check_browser.py _build/html --screenshots "${COURSE_LOG_DIR:-_build/logs}/screenshots"

echo "==> all tests passed in $((SECONDS - start)) s"

#!/usr/bin/env bash
# Build the HTML book: every notebook is executed afresh (no quick mode), a cell error or a Sphinx warning
# fails the build. Prints where the book is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# The kernel's own inline backend draws every figure into the page: MPLBACKEND (Agg in the tests)
# would override it and plt.show() would draw nothing. Progress bars are off: a page records the run.
unset MPLBACKEND COURSE_QUICK
export COURSE_PROGRESS=0
start=$SECONDS
# The notebooks, as many at a time as there are cores (BOOK_JOBS to choose), into the build's cache.
python scripts/execute_notebooks.py ${BOOK_JOBS:+--jobs "$BOOK_JOBS"}
jupyter-book build . --all --warningiserror --nitpick --keep-going
echo "==> book built in $((SECONDS - start)) s: open $PWD/_build/html/index.html"

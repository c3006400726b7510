#!/usr/bin/env bash
# The course's test command (what CI runs): lint; then, side by side, unit tests and doctests, every
# notebook executed by nbval in quick mode, every notebook run as in Colab (scripts/colab_like.py: a fresh
# environment holding only what its first cell installs) and the book built as readers get it; then the
# book checked to work offline and every page loaded in headless Chromium (scripts/check_browser.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg
start=$SECONDS
# Each stage prints its own time, so that a CI log tells where the minutes went.
stage() { echo "==> $1 (starting at $((SECONDS - start)) s)"; }
logs="${COURSE_LOG_DIR:-_build/logs}"
mkdir -p "$logs"

stage "ruff"
ruff check .

# The four runs below share nothing they write (no notebook writes a file; each run has its own folder
# under _build/), so they run side by side, each on ONE thread: on 2 cores, two runs of 2 threads each
# make torch's OpenMP threads wait for one another, several times slower than taking turns.
in_background() {  # name command...: run it in the background on one thread, into $logs/name.log
  local name=$1
  shift
  (
    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    began=$SECONDS
    rc=0
    "$@" > "$logs/$name.log" 2>&1 || rc=$?
    echo "$rc $((SECONDS - began))" > "$logs/$name.status"
  ) &
}
stage "side by side, one thread each: pytest, nbval, Colab-like, the book"
rm -f "$logs"/*.status
in_background pytest env COURSE_QUICK=1 pytest -q -p no:cacheprovider
in_background nbval env COURSE_QUICK=1 pytest -q -p no:cacheprovider --nbval-lax --nbval-cell-timeout=600 \
  --durations=10 notebooks/
in_background colab_like python scripts/colab_like.py
in_background book bash scripts/book.sh
wait
failed=()
for name in pytest nbval colab_like book; do
  read -r rc seconds < "$logs/$name.status" || { rc=1; seconds="?"; }
  echo "==> $name: exit status $rc after $seconds s; its output ($logs/$name.log):"
  cat "$logs/$name.log"
  [ "$rc" -eq 0 ] || failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "==> FAILED: ${failed[*]} (outputs above)"
  exit 1
fi

stage "the book's checks: offline, and every page in a browser"
python scripts/check_book.py _build/html
python scripts/check_browser.py _build/html --screenshots "$logs/screenshots"

echo "==> all tests passed in $((SECONDS - start)) s"

#!/usr/bin/env bash
# The course's test command (what CI runs): lint; then, side by side, unit tests and doctests, every
# notebook's student copy run by nbval as in Colab (scripts/colab_like.py: quick mode, in a fresh
# environment holding only what its first cell installs) and the book built as readers get it (every
# source notebook executed in full, two at a time); then the book checked to work offline and every page
# loaded in headless Chromium (scripts/check_browser.py).
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

# The runs below share nothing they write (no notebook writes a file; each run has its own folder under
# _build/), so they run side by side, every process on ONE thread: on 2 cores, runs of 2 threads each make
# torch's OpenMP threads wait for one another, several times slower than taking turns. With one thread a
# process, the cores stay busy until the last notebook is done (the book runs two notebooks at a time).
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
stage "side by side, one thread per process: pytest, nbval as in Colab, the book"
rm -f "$logs"/*.status
in_background book bash scripts/book.sh
in_background pytest env COURSE_QUICK=1 pytest -q -p no:cacheprovider --durations=10
in_background colab_like python scripts/colab_like.py
wait
failed=()
for name in pytest colab_like book; do
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

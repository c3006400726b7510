#!/usr/bin/env bash
# Time the README's two commands on this machine and write benchmarks/commands.md.
# Run after `bash scripts/setup.sh` so that installation time is not counted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
time_of() { local start=$SECONDS; "$@" > "benchmarks/$(basename "$2" .sh).log" 2>&1; echo $((SECONDS - start)); }
book=$(time_of bash scripts/book.sh)
tests=$(time_of bash scripts/test.sh)
{
  echo "# Time of the README's commands"
  echo
  echo "Measured by \`bash benchmarks/time_commands.sh\` on $(date -u +%Y-%m-%d), $(nproc) CPU cores, $(.venv/bin/python -c 'import torch; print("CUDA" if torch.cuda.is_available() else "no GPU")'), environment already installed."
  echo
  echo "| command | seconds | what it runs |"
  echo "| --- | ---: | --- |"
  echo "| \`bash scripts/book.sh\` | $book | every notebook executed (full mode, as many at a time as cores), HTML written |"
  echo "| \`bash scripts/test.sh\` | $tests | ruff; side by side, one thread per process: pytest + doctests, nbval on every student copy in its Colab-like environment (quick mode), the book build; then its offline and browser checks |"
} > benchmarks/commands.md
cat benchmarks/commands.md

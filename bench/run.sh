#!/usr/bin/env bash
# `make bench`: every bench/bench_*.py in turn. Each prints its ratios against
# what a user would run otherwise and writes bench/results/<name>.json.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p bench/results
status=0
for script in bench/bench_*.py; do
  echo "=== $script"
  .venv/bin/python "$script" || status=1
done
exit $status

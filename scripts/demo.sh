#!/usr/bin/env bash
# The README's demo command: builds cfutures and runs samples/quickstart,
# the README's example (submit, result, as_completed) on a thread pool.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q --enable-werror
make -j"$(nproc)" >/dev/null
echo "== samples/quickstart: five tasks on a thread pool, results as they complete"
./samples/quickstart

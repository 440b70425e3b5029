#!/usr/bin/env bash
# The README's test command: installs what is missing, builds cfutures in
# build/ and runs `make check`. Exits non-zero if any test fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q --enable-werror
make -j"$(nproc)" >/dev/null
make -j"$(nproc)" check || { bash "$top/scripts/show-failures.sh" .; exit 1; }

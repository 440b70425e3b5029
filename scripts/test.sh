#!/usr/bin/env bash
# The README's test command: installs what is missing, builds cfutures in
# build/ and runs `make check`. Exits non-zero if any test fails.
# libcurl, nginx and python3 are for the pdf_downloader sample's tests.
# jansson, SQLite and libvips are for the course samples (samples/course).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh libcurl4-openssl-dev nginx python3 libjansson-dev libsqlite3-dev libvips-dev
bash scripts/autogen.sh
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q --enable-werror
make -j"$(nproc)" >/dev/null
make -j"$(nproc)" check TESTS= >/dev/null # the test programs, quietly
make -j"$(nproc)" check || { bash "$top/scripts/show-failures.sh" .; exit 1; }

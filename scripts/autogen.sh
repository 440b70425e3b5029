#!/usr/bin/env bash
# Makes ./configure from a git clone (autoreconf -fi) unless it is there.
# Quiet when it works: automake's "installing 'build-aux/...'" lines go to
# stderr even with -Wnone, so its output is kept and shown only on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x configure ] && exit 0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! autoreconf -fi >"$log" 2>&1; then
    cat "$log" >&2
    echo "autoreconf -fi failed (are autoconf, automake, libtool and pkg-config installed?)" >&2
    exit 1
fi

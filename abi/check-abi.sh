#!/bin/sh
# The shared library keeps the ABI of the last release (issue 17):
#  - its SONAME is libcfutures.so.N with N = current - age of configure.ac's
#    CF_LT_VERSION (deliberate: set there and nowhere else);
#  - it exports exactly the functions the header declares (abi/exports.sh);
#  - against the newest baseline abi/cfutures-*.abi (an abidw dump of the
#    released library's public types and functions) with the same SONAME,
#    libabigail's abidiff finds no removed or changed function or variable
#    and no changed public type. Added functions are fine (libtool's C+1:0:A+1).
# An intended break bumps CF_LT_VERSION's current and zeroes age (a new
# SONAME: the check then says so and passes); a release records its
# baseline with `make abi-dump`. Skips (77) without a shared library or abidw.
src=${top_srcdir:-.}
bld=${top_builddir:-.}
so=$(ls "$bld"/lib/.libs/libcfutures.so.*.*.* 2>/dev/null | head -n 1)
[ -n "$so" ] || { echo "no shared library: skipped"; exit 77; }
command -v abidw >/dev/null 2>&1 && command -v abidiff >/dev/null 2>&1 ||
    { echo "no abidw/abidiff (apt-get install abigail-tools): skipped"; exit 77; }
tmp=${TMPDIR:-/tmp}/check-abi.$$
mkdir -p "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

lt=${CF_LT_VERSION:?CF_LT_VERSION not set}
cur=${lt%%:*} age=${lt##*:}
want=libcfutures.so.$((cur - age))
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "$want" ] || { echo "SONAME $soname, CF_LT_VERSION $lt wants $want"; fail=1; }

sh "$src/abi/exports.sh" "$src/include/cfutures.h" >"$tmp/declared"
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | LC_ALL=C sort -u >"$tmp/exported"
if ! cmp -s "$tmp/declared" "$tmp/exported"; then
    echo "exported symbols differ from the header's functions (< header, > library):"
    diff "$tmp/declared" "$tmp/exported" | grep '^[<>]'
    fail=1
fi

base=$(ls "$src"/abi/cfutures-*.abi 2>/dev/null | sort -V | tail -n 1)
[ -n "$base" ] || { echo "no baseline abi/cfutures-*.abi"; exit 1; }
abidw --headers-dir "$src/include" --drop-private-types --no-corpus-path \
    --out-file "$tmp/current.abi" "$so" || { echo "abidw failed"; exit 1; }
bsoname=$(sed -n "1s/.*soname='\([^']*\)'.*/\1/p" "$base")
if [ "$bsoname" != "$soname" ]; then
    echo "$(basename "$base") is $bsoname, this library $soname: a new major"
    echo "version, breaks allowed (record its baseline at release: make abi-dump)"
else
    abidiff --no-added-syms "$base" "$tmp/current.abi" >"$tmp/report"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$tmp/report"
        echo "ABI change against $(basename "$base") (abidiff exit $rc): an unintended"
        echo "break, or bump CF_LT_VERSION (configure.ac) if it is meant"
        fail=1
    fi
fi
[ "$fail" -eq 0 ] && echo "ABI ok: $soname, $(wc -l <"$tmp/exported") functions, against $(basename "$base")"
exit "$fail"

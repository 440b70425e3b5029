#!/bin/sh
# The manual matches the header (issue 17). Names come from
# include/cfutures.h itself, not from Doxygen, so a declaration the generator
# missed is caught:
#  - every function the header declares (CF_API ... name(), and every type
#    (typedef ... name; and } name;) has docs/ref/man/man3/name.3;
#  - every man3 page is such a name (no stale page), and every function page
#    is a symbol the shared library exports (when one was built);
#  - every page (man1, man3, man7) lints clean: mandoc -T lint -W warning,
#    else groff -ww -z;
#  - every page has a DESCRIPTION with words in it.
# Skips (77) when the manual was not built (no doxygen or python3).
src=${top_srcdir:-.}
bld=${top_builddir:-.}
man=$bld/docs/ref/man
[ -f "$bld/docs/ref/stamp" ] || { echo "no manual built (doxygen, python3): skipped"; exit 77; }
tmp=${TMPDIR:-/tmp}/check-man.$$
mkdir -p "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT
hdr=$src/include/cfutures.h
fail=0

# Functions: the name before "(" on a CF_API line (declarations span lines,
# but the name is on the first). Types: typedef ... name; and } name;.
grep -E '^CF_API' "$hdr" | sed -E 's/\(.*//; s/.*[ *]([A-Za-z_][A-Za-z0-9_]*)$/\1/' |
    sort -u >"$tmp/functions"
{
    grep -E '^typedef .*[ *]([A-Za-z_][A-Za-z0-9_]*);' "$hdr" | grep -v '(\*' |
        sed -E 's/.*[ *]([A-Za-z_][A-Za-z0-9_]*);.*/\1/'
    grep -E '^typedef .*\(\*' "$hdr" | sed -E 's/.*\(\*([A-Za-z_][A-Za-z0-9_]*)\).*/\1/'
    grep -E '^\} *[A-Za-z_][A-Za-z0-9_]*;' "$hdr" | sed -E 's/^\} *([A-Za-z_][A-Za-z0-9_]*);.*/\1/'
} | sort -u >"$tmp/types"
sort -u "$tmp/functions" "$tmp/types" >"$tmp/names"
ls "$man/man3" | sed -n 's/\.3$//p' | sort -u >"$tmp/pages"
nf=$(wc -l <"$tmp/functions"); nt=$(wc -l <"$tmp/types")
[ "$nf" -gt 0 ] && [ "$nt" -gt 0 ] || { echo "read no names from $hdr"; exit 1; }

missing=$(comm -23 "$tmp/names" "$tmp/pages")
[ -z "$missing" ] || { echo "public names without a page:"; echo "$missing"; fail=1; }
stale=$(comm -13 "$tmp/names" "$tmp/pages")
[ -z "$stale" ] || { echo "pages that name nothing in the header:"; echo "$stale"; fail=1; }

so=$(ls "$bld"/lib/.libs/libcfutures.so 2>/dev/null | head -n 1)
if [ -n "$so" ]; then
    nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sort -u >"$tmp/exported"
    # The MPI pool's functions exist only --with-mpi (abi/local.mk: CF_WITH_MPI).
    unexported=$(comm -23 "$tmp/functions" "$tmp/exported" |
        if [ "${CF_WITH_MPI:-no}" = yes ]; then cat; else sed '/^mpi_pool_/d'; fi)
    [ -z "$unexported" ] || { echo "function pages for symbols the library lacks:"; echo "$unexported"; fail=1; }
fi

for page in "$man"/man1/*.1 "$man"/man3/*.3 "$man"/man7/*.7; do
    [ -f "$page" ] || continue
    if command -v mandoc >/dev/null 2>&1; then
        out=$(mandoc -T lint -W warning "$page" 2>&1)
    else
        out=$(groff -ww -z -man "$page" 2>&1)
    fi
    [ -z "$out" ] || { echo "$out"; fail=1; }
    words=$(sed -n '/^\.SH "*DESCRIPTION/,/^\.SH/p' "$page" | grep -v '^\.' | wc -w)
    [ "$words" -ge 3 ] || { echo "$page: no description"; fail=1; }
done
[ -f "$man/man7/cfutures.7" ] || { echo "no cfutures(7)"; fail=1; }

[ "$fail" -eq 0 ] && echo "man pages ok: $nf functions, $nt types, $(ls "$man"/man3 | wc -l) pages in man3"
exit "$fail"

#!/bin/sh
# The public examples compile and run (issue 17): every ```c block of
# docs/overview.md (cfutures(7) and the HTML main page), README.md and
# PORTING.md that is a whole program (defines main) is built against this
# build's static library with -Werror and run; it must exit 0. Snippets
# (no main) are not programs and are not run.
src=${top_srcdir:-.}
bld=${top_builddir:-.}
lib=$bld/lib/.libs/libcfutures.a
[ -f "$lib" ] || { echo "no static library: skipped"; exit 77; }
tmp=${TMPDIR:-/tmp}/examples.$$
mkdir -p "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0 count=0
for doc in docs/overview.md README.md PORTING.md; do
    [ -f "$src/$doc" ] || continue
    # Split the document's ```c blocks into ex1.c, ex2.c, ...
    rm -f "$tmp"/ex*.c
    awk -v dir="$tmp" '/^```c[[:space:]]*$/ {n++; out = dir "/ex" n ".c"; next}
                       /^```/ {out = ""; next}
                       out != "" {print > out}' "$src/$doc"
    for c in "$tmp"/ex*.c; do
        [ -f "$c" ] || continue
        grep -q '^int main' "$c" || continue
        count=$((count + 1))
        name="$doc block $(basename "$c" .c | sed 's/ex//')"
        # shellcheck disable=SC2086
        if ! ${DOCS_CC:-cc} -std=gnu11 -Wall -Wextra -Werror $DOCS_CFLAGS -I"$src/include" "$c" \
                "$lib" -o "$tmp/prog" $DOCS_LDFLAGS -lpthread -lm 2>"$tmp/err"; then
            echo "$name: does not compile:"; cat "$tmp/err"; fail=1; continue
        fi
        if ! "$tmp/prog" >"$tmp/out" 2>&1; then
            echo "$name: exits non-zero:"; cat "$tmp/out"; fail=1; continue
        fi
        echo "$name: ok ($(head -c 60 "$tmp/out" | tr '\n' ' '))"
    done
done
[ "$count" -gt 0 ] || { echo "no whole-program example found"; exit 1; }
exit "$fail"

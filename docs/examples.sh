#!/bin/sh
# The public examples compile (issue 17). Every ```c block of
# docs/overview.md (cfutures(7) and the HTML main page), README.md and
# PORTING.md:
#  - a whole program (it defines main) is built against this build's static
#    library with -Werror and run: it must exit 0;
#  - a snippet is compiled (-fsyntax-only -Werror) after docs/snippets.h,
#    which declares what the guide takes as given (ex, f, fs, n, sq, x...):
#    its functions and struct types at file scope, its statements in a
#    function (docs/snippets.awk splits them; "..." becomes "{}"). A
#    misspelt name, a wrong argument type or a missing header fails.
src=${top_srcdir:-.}
bld=${top_builddir:-.}
lib=$bld/lib/.libs/libcfutures.a
[ -f "$lib" ] || { echo "no static library: skipped"; exit 77; }
tmp=${TMPDIR:-/tmp}/examples.$$
mkdir -p "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0 count=0 snippets=0
for doc in docs/overview.md README.md PORTING.md; do
    [ -f "$src/$doc" ] || continue
    # Split the document's ```c blocks into ex1.c, ex2.c, ...
    rm -f "$tmp"/ex*.c
    awk -v dir="$tmp" '/^```c[[:space:]]*$/ {n++; out = dir "/ex" n ".c"; next}
                       /^```/ {out = ""; next}
                       out != "" {print > out}' "$src/$doc"
    for c in "$tmp"/ex*.c; do
        [ -f "$c" ] || continue
        name="$doc block $(basename "$c" .c | sed 's/ex//')"
        if ! grep -q '^int main' "$c"; then
            rm -f "$tmp/top" "$tmp/body"
            awk -v top="$tmp/top" -v body="$tmp/body" -f "$src/docs/snippets.awk" "$c"
            touch "$tmp/top" "$tmp/body"
            { cat "$src/docs/snippets.h"; echo "#line 1 \"$name (file scope)\""
              cat "$tmp/top"; echo "void snippet(void);"; echo "void snippet(void) {"
              echo "#line 1 \"$name\""; cat "$tmp/body"; echo "}"; } >"$tmp/snippet.c"
            # shellcheck disable=SC2086
            if ${DOCS_CC:-cc} -std=gnu11 -fsyntax-only -Wall -Wextra -Wno-unused-parameter \
                    -Werror $DOCS_CFLAGS -I"$src/include" "$tmp/snippet.c" 2>"$tmp/err"; then
                snippets=$((snippets + 1))
            else
                echo "$name: does not compile:"; cat "$tmp/err"; fail=1
            fi
            continue
        fi
        count=$((count + 1))
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
[ "$fail" -eq 0 ] && echo "examples ok: $count programs run, $snippets snippets compile"
exit "$fail"

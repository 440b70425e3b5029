#!/usr/bin/env bash
# The shape of lib/ (issue 12), checked on every make check and so in CI:
#
# 1. Layers. Each file of lib/ has a rank; a file may include only headers
#    of a lower rank, its own header (x.c includes x.h), and, in a folder
#    listed in PEER_FOLDERS, the other headers of that folder.
#    include/cfutures.h, config.h and system headers are always fine. A file
#    that is not in the table below is an error: a new file gets a rank.
#      0 util   1 waiter   2 future   3 task, waiters, executor
#      4 map, thread_pool   5 process/*   6 mpi/*
# 2. No lib/**/*.c file over MAX_FILE_LINES (700) lines.
# 3. No function over MAX_FUNC_LINES (60) lines in lib/**/*.c, counted from
#    the "{" alone at column 0 that opens its body to the "}" at column 0
#    that closes it, both included (the clang-format style of this tree).
#
# Prints every violation as file:line: what, and exits 1 if there is any.
# Run from make check (top_srcdir set) or by hand from anywhere.
set -euo pipefail
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
MAX_FILE_LINES=${MAX_FILE_LINES:-700}
MAX_FUNC_LINES=${MAX_FUNC_LINES:-60}
PEER_FOLDERS="process"

# rank NAME: the rank of lib/NAME (a path below lib/), or nothing.
rank() {
    local stem=${1%.[ch]}
    case $stem in
    util) echo 0 ;;
    waiter) echo 1 ;;
    future) echo 2 ;;
    task | waiters | executor) echo 3 ;;
    map | thread_pool) echo 4 ;;
    process/*) echo 5 ;;
    mpi/*) echo 6 ;;
    esac
}

bad=0
violation() {
    echo "$1"
    bad=1
}

[ -d lib ] || { echo "check-layers: no lib/ under $top" >&2; exit 2; }
mapfile -t files < <(find lib -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)

# 1. The include graph.
for f in "${files[@]}"; do
    name=${f#lib/}
    r=$(rank "$name")
    if [ -z "$r" ]; then
        violation "$f:1: not ranked: add it to the table in tests/check-layers.sh"
        continue
    fi
    dir=$(dirname "$f")
    while IFS= read -r hit; do
        line=${hit%%:*}
        inc=${hit#*:}
        # Where the compiler finds it: beside the file, then -I include, -I lib.
        target=
        for cand in "$dir/$inc" "include/$inc" "lib/$inc"; do
            if [ -f "$cand" ]; then
                target=$(realpath -m --relative-to=. "$cand")
                break
            fi
        done
        case $target in
        include/*) continue ;;
        lib/*) ;;
        *)
            [ "$inc" = config.h ] && continue
            violation "$f:$line: includes \"$inc\", which is not in lib/ or include/"
            continue
            ;;
        esac
        tname=${target#lib/}
        tr=$(rank "$tname")
        [ -n "$tr" ] || continue # reported as not ranked on its own
        [ "${tname%.h}" = "${name%.[ch]}" ] && continue # x.c includes x.h
        if [ "$tr" -lt "$r" ]; then
            continue
        fi
        tdir=$(dirname "$tname") same=
        for peer in $PEER_FOLDERS; do
            [ "$tdir" = "$peer" ] && [ "$(dirname "$name")" = "$peer" ] && same=1
        done
        [ -n "$same" ] && continue
        if [ "$tr" -eq "$r" ]; then
            violation "$f:$line: includes $target of its own rank $r (only lower layers)"
        else
            violation "$f:$line: includes $target (rank $tr) from rank $r: a back-edge"
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
        sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/')
done

# 2 and 3. File and function lengths, C files only.
for f in "${files[@]}"; do
    case $f in *.c) ;; *) continue ;; esac
    n=$(wc -l <"$f")
    if [ "$n" -gt "$MAX_FILE_LINES" ]; then
        violation "$f:$n: $n lines (at most $MAX_FILE_LINES a file)"
    fi
    out=$(awk -v max="$MAX_FUNC_LINES" '
        # sig: the last line outside a body that starts at column 0 with a
        # name: the first line of the signature (continuations are indented).
        /^[A-Za-z_]/ && !inbody { sig = $0; sigline = FNR }
        /^\{[[:space:]]*$/ && !inbody { inbody = 1; open = FNR; next }
        inbody && /^\}/ {
            inbody = 0
            len = FNR - open + 1
            if (len > max) {
                fn = sig
                sub(/[[:space:]]*\(.*/, "", fn)
                sub(/.*[[:space:]*]/, "", fn)
                printf "%s:%d: function %s is %d lines (at most %d)\n", FILENAME, sigline, fn, len, max
            }
        }
        END { if (inbody) printf "%s:%d: a function body opened here never closes at column 0\n", FILENAME, open }
    ' "$f")
    if [ -n "$out" ]; then
        violation "$out"
    fi
done

if [ "$bad" -ne 0 ]; then
    echo "check-layers: lib/ breaks the rules above (see tests/check-layers.sh)" >&2
    exit 1
fi
echo "check-layers: ${#files[@]} files of lib/, no back-edge, no file over $MAX_FILE_LINES lines, no function over $MAX_FUNC_LINES"

#!/usr/bin/env bash
# The shape of lib/ (issue 12), checked on every make check and so in CI:
#
# 1. Layers. Each file of lib/ has a rank; a file may include only headers
#    of a lower rank, its own header (x.c includes x.h), and, in a folder
#    listed in PEER_FOLDERS, the other headers of that folder.
#    include/cfutures.h, config.h and system headers are always fine. A file
#    that is not in the table below is an error: a new file gets a rank.
#      0 util   1 waiter, timer, blocks   2 future   3 task, waiters, executor
#      4 map, compose, schedule, control, thread/*   5 group, process/*   6 mpi/*
# 2. No lib/**/*.c file over MAX_FILE_LINES (700) lines.
# 3. No function over MAX_FUNC_LINES (60) lines in lib/**/*.c, counted from
#    the "{" alone at column 0 that opens its body to the "}" at column 0
#    that closes it, both included (the clang-format style of this tree).
# 4. The call graph, by the same rule as 1: with the objects of the core
#    library built (top_builddir from make check; by hand, build/ if there),
#    no lib file calls a function or uses a variable defined in a file it
#    could not include (nm: what one object leaves undefined and another
#    defines). Declarations put in a lower header for a higher file to
#    define ("provided by executor.c") show up here, not in 1.
#
# Prints every violation as file:line: what, and exits 1 if there is any.
# Run from make check (top_srcdir set) or by hand from anywhere.
set -euo pipefail
build=${top_builddir:-}
[ -n "$build" ] || build=$(cd "$(dirname "$0")/.." && pwd)/build
build=$(cd "$build" 2>/dev/null && pwd) || build=
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
MAX_FILE_LINES=${MAX_FILE_LINES:-700}
MAX_FUNC_LINES=${MAX_FUNC_LINES:-60}
PEER_FOLDERS="process mpi thread"

# rank NAME: sets RANK to the rank of lib/NAME (a path below lib/), or to
# nothing. The functions here set variables rather than print, because a
# command substitution forks, and the call graph asks thousands of times.
rank() {
    local stem=${1%.[ch]}
    RANK=
    case $stem in
    util) RANK=0 ;;
    waiter | timer | blocks | error) RANK=1 ;;
    future) RANK=2 ;;
    task | waiters | cqueue | executor | result) RANK=3 ;;
    map | compose | schedule | control | thread/*) RANK=4 ;;
    group | process/*) RANK=5 ;;
    mpi/*) RANK=6 ;;
    esac
}

# normal PATH: sets NORMAL to the relative PATH without "." and "dir/.."
# (realpath -m --relative-to=., without a fork).
normal() {
    local part parts=()
    local IFS=/
    for part in $1; do
        case $part in
        . | '') ;;
        ..) [ ${#parts[@]} -gt 0 ] && unset 'parts[${#parts[@]}-1]' ;;
        *) parts+=("$part") ;;
        esac
    done
    NORMAL="${parts[*]}"
}

bad=0
violation() {
    echo "$1"
    bad=1
}

[ -d lib ] || { echo "check-layers: no lib/ under $top" >&2; exit 2; }
mapfile -t files < <(find lib -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)

# allowed FILE TARGET: may lib/FILE use lib/TARGET (paths below lib/)?
# Sets WHY to why not, or to nothing.
allowed() {
    local name=$1 tname=$2 r tr peer
    WHY=
    rank "$name"
    r=$RANK
    rank "$tname"
    tr=$RANK
    [ -n "$r" ] && [ -n "$tr" ] || return 0 # reported as not ranked on their own
    [ "${tname%.[ch]}" = "${name%.[ch]}" ] && return 0 # x.c and x.h
    [ "$tr" -lt "$r" ] && return 0
    for peer in $PEER_FOLDERS; do
        [ "${tname%/*}" = "$peer" ] && [ "${name%/*}" = "$peer" ] && return 0
    done
    if [ "$tr" -eq "$r" ]; then
        WHY="of its own rank $r (only lower layers)"
    else
        WHY="(rank $tr) from rank $r: a back-edge"
    fi
}

# 1. The include graph.
for f in "${files[@]}"; do
    name=${f#lib/}
    rank "$name"
    if [ -z "$RANK" ]; then
        violation "$f:1: not ranked: add it to the table in tests/check-layers.sh"
        continue
    fi
    dir=${f%/*}
    while IFS= read -r hit; do
        line=${hit%%:*}
        inc=${hit#*:}
        # Where the compiler finds it: beside the file, then -I include, -I lib.
        target=
        for cand in "$dir/$inc" "include/$inc" "lib/$inc"; do
            if [ -f "$cand" ]; then
                normal "$cand"
                target=$NORMAL
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
        allowed "$name" "${target#lib/}"
        [ -z "$WHY" ] || violation "$f:$line: includes $target $WHY"
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

# 4. The call graph, from the objects of lib/'s libtool libraries (named
# lib/DIR/LIBNAME_la-NAME.o; the PIC copies are in .libs/).
calls=skipped
if [ -n "$build" ] && command -v nm >/dev/null 2>&1; then
    mapfile -t objs < <(find "$build/lib" -name '*_la-*.o' -not -path '*/.libs/*' 2>/dev/null | LC_ALL=C sort)
    [ ${#objs[@]} -ne 0 ] ||
        mapfile -t objs < <(find "$build/lib" -path '*/.libs/*_la-*.o' 2>/dev/null | LC_ALL=C sort)
    syms=$(mktemp)
    trap 'rm -f "$syms"' EXIT
    for o in "${objs[@]}"; do
        rel=${o#"$build"/lib/}
        rel=${rel/.libs\//}
        base=${rel##*/}
        src=${base#*_la-}
        src=${src%.o}.c
        [ "$rel" = "$base" ] || src=${rel%/*}/$src
        [ -f "lib/$src" ] || continue # a stale object of a file that is gone
        nm "$o" | awk -v s="$src" '
            NF == 3 && $2 ~ /^[TDBRCWV]$/ { print "D", s, $3 }
            NF == 2 && $1 == "U" { print "U", s, $2 }' >>"$syms"
    done
    if [ -s "$syms" ]; then
        calls=checked
        while read -r user def sym; do
            allowed "$user" "$def"
            [ -n "$WHY" ] || continue
            line=$(grep -n -w -m 1 "$sym" "lib/$user" | cut -d: -f1)
            violation "lib/$user:${line:-1}: uses $sym of lib/$def $WHY"
        done < <(awk '$1 == "D" { def[$3] = $2 } $1 == "U" { use[$2 " " $3] = 1 }
                      END { for (k in use) { split(k, a, " ")
                                if ((a[2] in def) && def[a[2]] != a[1]) print a[1], def[a[2]], a[2] } }' "$syms" |
                 LC_ALL=C sort)
    fi
fi
[ "$calls" = checked ] || echo "check-layers: no objects of lib/ under ${build:-a build folder}: the call graph is not checked"

if [ "$bad" -ne 0 ]; then
    echo "check-layers: lib/ breaks the rules above (see tests/check-layers.sh)" >&2
    exit 1
fi
echo "check-layers: ${#files[@]} files of lib/, no back-edge (includes; calls $calls), no file over $MAX_FILE_LINES lines, no function over $MAX_FUNC_LINES"

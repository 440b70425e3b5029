#!/usr/bin/env bash
# Side-by-side bench of samples/pdf_downloader (issue 5), in one run:
#   C2: 200 files x 256 KiB from a server that waits 50 ms before each
#       response (tests/pdfdl_server.py /slow/), 16 workers; ideal 0.65 s;
#   C3: 20 files x 20 MiB from nginx, 5 workers.
# Tools: pdf_downloader, curl --parallel, xargs -P curl, wget2 (if
# installed) and the course's Python program. Prints a Markdown table:
# median wall time over RUNS interleaved runs (min-max), MiB/s, peak RSS (GNU time),
# and whether every file came out byte-identical.
# Usage: bash bench/pdf_downloader.sh [BUILD_DIR]   (RUNS=5 by default)
#   BASE=OTHER_BUILD_DIR adds that build's pdf_downloader (an A/B row, e.g. the
#   last release's); TOOLS="pdf_downloader ..." picks the tools to run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bld=$(cd "${1:-$top/build}" && pwd)
prog=$bld/samples/pdf_downloader/pdf_downloader
RUNS=${RUNS:-5}
[ -x "$prog" ] || { echo "build $prog first" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/pdfdl-bench.XXXXXX")
spid=
cleanup() {
    set +e # a failing step here must not skip the ones after it
    [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
    bash "$top/scripts/nginx-serve.sh" stop "$W/nginx" || true
    rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/www/c2" "$W/www/c3"
for i in $(seq -w 1 200); do
    { printf '%%PDF-1.4\n'; head -c $((256 * 1024 - 9)) /dev/urandom; } > "$W/www/c2/f$i.pdf"
done
for i in $(seq -w 1 20); do
    { printf '%%PDF-1.4\n'; head -c $((20 * 1024 * 1024 - 9)) /dev/urandom; } > "$W/www/c3/f$i.pdf"
done
chmod -R a+rX "$W/www"
ng=$(bash "$top/scripts/nginx-serve.sh" start "$W/www" "$W/nginx")
python3 "$top/tests/pdfdl_server.py" "$W/www" > "$W/slow.port" &
spid=$!
for _ in $(seq 1 100); do [ -s "$W/slow.port" ] && break; sleep 0.05; done
read -r slow _ < "$W/slow.port"
for i in $(seq -w 1 200); do echo "http://127.0.0.1:$slow/slow/c2/f$i.pdf"; done > "$W/c2.list"
for i in $(seq -w 1 20); do echo "http://127.0.0.1:$ng/c3/f$i.pdf"; done > "$W/c3.list"

# tool_cmd TOOL N LIST: the command line, run inside the target folder.
tool_cmd() {
    case $1 in
    pdf_downloader) echo "$prog -q -j $2 -i $3" ;;
    pdf_downloader-base) echo "$BASE/samples/pdf_downloader/pdf_downloader -q -j $2 -i $3" ;;
    curl-parallel) echo "curl -sS -f -Z --parallel-max $2 --remote-name-all \$(cat $3)" ;;
    xargs-curl) echo "xargs -P $2 -n 1 curl -sSfO < $3" ;;
    wget2) echo "wget2 -q --max-threads $2 -i $3" ;;
    python-course) echo "python3 $top/bench/course_downloader.py $2 $3" ;;
    esac
}

# once CORPUS N TOOL RUN: one timed run into a fresh folder; appends
# "wall rss_kb ok" to $W/res/CORPUS-TOOL.
once() {
    local corpus=$1 n=$2 tool=$3 d="$W/run/$1-$3-$4" ok=yes cmd
    mkdir -p "$d" "$W/res"
    cmd=$(tool_cmd "$tool" "$n" "$W/$corpus.list")
    sync # the last run's dirty pages are written back before this one starts
    (cd "$d" && /usr/bin/time -f "%e %M" -o "$W/time" bash -c "$cmd" >/dev/null 2>&1) || ok=no
    diff -r -q "$W/www/$corpus" "$d" >/dev/null || ok=no
    echo "$(cat "$W/time") $ok" >> "$W/res/$corpus-$tool"
    rm -rf "$d"
}

# row CORPUS N TOOL: one table row from the runs recorded.
row() {
    local corpus=$1 n=$2 tool=$3 f="$W/res/$1-$3" mib sorted med rss ok
    mib=$(du -sm --apparent-size "$W/www/$corpus" | cut -f1)
    sorted=$(cut -d' ' -f1 "$f" | sort -n)
    med=$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p")
    rss=$(cut -d' ' -f2 "$f" | sort -n | tail -1)
    ok=$(grep -q ' no$' "$f" && echo no || echo yes)
    printf '| %s | %s | %d | %s (%s-%s) | %.0f | %.1f | %s |\n' "$corpus" "$tool" "$n" "$med" \
        "$(echo "$sorted" | head -1)" "$(echo "$sorted" | tail -1)" \
        "$(echo "$mib / $med" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$ok"
}

if [ -n "${TOOLS:-}" ]; then
    read -r -a tools <<< "$TOOLS"
else
    tools=(pdf_downloader curl-parallel xargs-curl)
    command -v wget2 >/dev/null && tools+=(wget2)
    tools+=(python-course)
fi
if [ -n "${BASE:-}" ]; then
    BASE=$(cd "$BASE" && pwd)
    [ -x "$BASE/samples/pdf_downloader/pdf_downloader" ] || { echo "no pdf_downloader in $BASE" >&2; exit 1; }
    tools+=(pdf_downloader-base)
fi
echo "RUNS=$RUNS, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| corpus | tool | workers | median wall s (min-max) | MiB/s | peak RSS MiB | correct |"
echo "|---|---|---:|---|---:|---:|---|"
# Runs are interleaved (run 1 of every tool, then run 2, ...) so that a
# neighbour's load on the machine spreads over every tool alike.
for r in $(seq 1 "$RUNS"); do
    for t in "${tools[@]}"; do once c2 16 "$t" "$r"; done
    for t in "${tools[@]}"; do once c3 5 "$t" "$r"; done
done
for t in "${tools[@]}"; do row c2 16 "$t"; done
for t in "${tools[@]}"; do row c3 5 "$t"; done

#!/bin/sh
# bench/run.sh: runs every benchmark configuration in rounds and prints the
# table of figures, the ratios to the baselines and the issue's targets.
#
# Round r runs every configuration once, so rows that are compared ran side
# by side; a figure is the median (min-max) over the rounds, a ratio is taken
# within each round and then the median. Before each run the share of both
# CPUs used by other processes is sampled for 0.25 s ("others' load").
#
# Environment:
#   ROUNDS     rounds (default 9; 1 with QUICK)
#   QUICK=1    one round, smaller N: a smoke test, its figures are indicative
#   BENCH_BIN  the program (default bench/bench_cfutures)
#   OUT        the folder for everything generated (default bench/results/
#              beside this script: git-ignored)
#   RESULTS    every run and the summary (default $OUT/results.json)
#   RESULTS_MD the tables as Markdown (default $OUT/RESULTS-generated.md);
#              the chart goes beside it as bench-chart.png
# Nothing else is written: the committed bench/RESULTS.md changes only when a
# run is promoted on purpose (bench/promote.sh, bench/README.md).
# `make bench` sets BENCH_BIN and OUT and passes QUICK and ROUNDS on.
set -eu

BENCH_BIN=${BENCH_BIN:-bench/bench_cfutures}
OUT=${OUT:-$(dirname "$0")/results}
RESULTS=${RESULTS:-$OUT/results.json}
RESULTS_MD=${RESULTS_MD:-$OUT/RESULTS-generated.md}
export RESULTS_MD
QUICK=${QUICK:-}
ROUNDS=${ROUNDS:-}
case $QUICK in '' | 0 | no) QUICK=0 ;; *) QUICK=1 ;; esac

if [ "$QUICK" = 1 ]; then
    : "${ROUNDS:=1}"
    W1_N=50000 W2_ITERS=2000 W5_N=1000000 W6_N=100000 W6_REPS=5 PP_ITERS=2000
    W7_N=100 W8_S=1
    W3_N=20000 W3MAP_N=200000 W3B_N=500 W4_PAIRS=1 W9_N=20000 W10_N=20000
    PY_W1_N=10000 PY_W2_ITERS=500 PY_W5_N=100000 PY_W6_REPS=1 PY_W3_N=1000 PY_W3B_N=200
else
    : "${ROUNDS:=9}"
    W1_N=200000 W2_ITERS=10000 W5_N=1000000 W6_N=100000 W6_REPS=11 PP_ITERS=10000
    W7_N=500 W8_S=2
    W3_N=20000 W3MAP_N=200000 W3B_N=2000 W4_PAIRS=3 W9_N=100000 W10_N=100000
    PY_W1_N=50000 PY_W2_ITERS=2000 PY_W5_N=100000 PY_W6_REPS=3 PY_W3_N=5000 PY_W3B_N=500
fi
case $ROUNDS in '' | *[!0-9]* | 0) echo "run.sh: ROUNDS must be a positive integer" >&2; exit 2 ;; esac

if [ ! -x "$BENCH_BIN" ]; then
    echo "run.sh: $BENCH_BIN not found: run 'make bench' (or set BENCH_BIN)" >&2
    exit 2
fi
command -v python3 >/dev/null 2>&1 || { echo "run.sh: python3 is needed for the table" >&2; exit 2; }

# One configuration a line: "c ARGS" runs the program, "py ARGS" the Python
# baseline (py_bench.py); "once ..." runs in the first round only (the 30 s
# Python W4, full runs only). Compared rows follow each other, so they also
# ran close together within a round.
CONFIGS="c cond $PP_ITERS
c spin $PP_ITERS
c w2 $W2_ITERS 2
c --naive w2 $W2_ITERS 2
py w2 $PY_W2_ITERS 2 tpe
c w1 $W1_N 1
c --naive w1 $W1_N 1
uv $W1_N 1
tbb $W1_N 1
go $W1_N 1
py w1 $PY_W1_N 1
c w1 $W1_N 2
c --naive w1 $W1_N 2
uv $W1_N 2
tbb $W1_N 2
go $W1_N 2
py w1 $PY_W1_N 2
c w1 $W1_N 4
c --naive w1 $W1_N 4
uv $W1_N 4
tbb $W1_N 4
go $W1_N 4
py w1 $PY_W1_N 4
sys w1 $W1_N 2
sys --naive w1 $W1_N 2
sys go $W1_N 2
c w7 $W7_N
c --naive w7 $W7_N
c w11 $W2_ITERS
c --naive w11 $W2_ITERS
c w8 thread idle $W8_S
c w8 thread busy $W8_S
c w8 thread timers $W8_S
c w12 thread
c w5 $W5_N
c --naive w5 $W5_N
py w5 $PY_W5_N
c w6 $W6_N $W6_REPS
py w6 $W6_N $PY_W6_REPS
c w9 $W9_N
c w10 $W10_N
c cqwake $PP_ITERS
c pipe $PP_ITERS
c ppw2 $PP_ITERS 2
c pipew7 $W7_N
c ppw7 $W7_N
c w8 process idle $W8_S
c w8 process busy $W8_S
c w8 process timers $W8_S
c w12 process
c w13 50
c stalls 1
py w2 $PY_W2_ITERS 2 ppe
c ppw3 $W3_N 2
c npw3 $W3_N 2
py w3 ppe $PY_W3_N 2
py w3 mp-apply $PY_W3_N 2
c ppw3map $W3MAP_N 2 $((W3MAP_N / 8))
py w3 mp-map $W3MAP_N 2
c echo $W3B_N 65536
c ppw3b $W3B_N 2 65536 3
c ppw3b $W3B_N 2 65536 3 borrow
c npw3b $W3B_N 2 65536
py w3 ppe $PY_W3B_N 2 65536
c w4 thread 2 $W4_PAIRS
c w4 process 2 $W4_PAIRS"
[ "$QUICK" = 1 ] || CONFIGS="$CONFIGS
once py w4 2"
PY_BENCH=${PY_BENCH:-$(dirname "$0")/py_bench.py}
BENCH_SRC=$(dirname "$0")

# "sys ARGS": counts the futex and sched_yield calls of every thread of the
# program, per task (W1), and prints them as its one JSON line. perf's
# syscall tracepoints count them as they run; strace, the fallback, stops
# the thread at every call (20-45 us each here), which slows the submitter
# so much that the pools fall into a different regime: the same binary gave
# 0.003 and 0.43 calls a task in successive strace runs. "counter" says
# which one counted.
perf_syscalls=
if command -v perf >/dev/null 2>&1 &&
    perf stat -x, -e syscalls:sys_enter_futex true >/dev/null 2>&1; then
    perf_syscalls=1
fi
syscount() {
    local bin=$1 impl=cfutures counter f y
    shift
    [ "$1" = --naive ] && impl=naive
    case $bin in */be_go) impl=go ;; esac
    local words=("$@")
    local n=${words[${#words[@]} - 2]} workers=${words[${#words[@]} - 1]}
    if [ -n "$perf_syscalls" ]; then
        counter=perf
        perf stat -x, -o "$tmp/sysc" -e syscalls:sys_enter_futex,syscalls:sys_enter_sched_yield \
            "$bin" "$@" >/dev/null || return 1
        f=$(awk -F, '/sys_enter_futex/ { print $1 + 0 }' "$tmp/sysc")
        y=$(awk -F, '/sys_enter_sched_yield/ { print $1 + 0 }' "$tmp/sysc")
    else
        counter=strace
        strace -f -qq -c -e trace=futex,sched_yield -o "$tmp/sysc" "$bin" "$@" >/dev/null || return 1
        f=$(awk '$NF == "futex" { print $4 + 0 }' "$tmp/sysc")
        y=$(awk '$NF == "sched_yield" { print $4 + 0 }' "$tmp/sysc")
    fi
    awk -v impl="$impl" -v n="$n" -v w="$workers" -v counter="$counter" -v f="${f:-0}" -v y="${y:-0}" 'BEGIN {
        printf "{\"bench\":\"w1sys\",\"impl\":\"%s\",\"n\":%d,\"workers\":%d,\"futex\":%d,\"sched_yield\":%d,\"per_task\":%.5f,\"counter\":\"%s\"}\n", impl, n, w, f, y, (f + y) / n, counter
        printf "w1 syscalls %s (%s): %d futex + %d sched_yield for %d tasks, %d workers: %.4f a task\n", impl, counter, f, y, n, w, (f + y) / n
    }'
}

# Busy and total jiffies of all CPUs.
cpu_sample() {
    awk '/^cpu /{ busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6 }' /proc/stat
}

# Percent of both CPUs others used over the next 0.25 s (we only sleep).
others_load() {
    s0=$(cpu_sample)
    sleep 0.25
    s1=$(cpu_sample)
    echo "$s0 $s1" | awk '{ dt = $4 - $2; printf "%.0f", (dt > 0 ? 100 * ($3 - $1) / dt : 0) }'
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfutures-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
runs=$tmp/runs.jsonl
: >"$runs"
failed=0

# The optional W1 baselines, each built here if its package is installed
# (libuv1-dev, libtbb-dev, golang-go); a missing one is skipped with a note.
if pkg-config --exists libuv 2>/dev/null &&
    ${CC:-cc} -O2 -o "$tmp/be_uv" "$BENCH_SRC/be_uv.c" $(pkg-config --cflags --libs libuv) -lpthread 2>"$tmp/build.err"; then
    :
else
    echo "note: libuv baseline skipped (install libuv1-dev)"
fi
if [ -f /usr/include/oneapi/tbb/task_arena.h ] &&
    ${CXX:-c++} -O2 -std=c++17 -o "$tmp/be_tbb" "$BENCH_SRC/be_tbb.cpp" -ltbb -lpthread 2>"$tmp/build.err"; then
    :
else
    echo "note: oneTBB baseline skipped (install libtbb-dev)"
fi
if command -v go >/dev/null 2>&1 &&
    GOCACHE=$tmp/gocache GOPATH=$tmp/gopath GO111MODULE=off go build -o "$tmp/be_go" "$BENCH_SRC/go/main.go" 2>"$tmp/build.err"; then
    :
else
    echo "note: Go baseline skipped (install golang-go)"
fi

echo "cfutures bench: $ROUNDS round(s)$([ "$QUICK" = 1 ] && echo ', QUICK (smaller N, indicative only)'), $(nproc) CPUs, $(uname -r)"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    echo "== round $r/$ROUNDS"
    echo "$CONFIGS" | while IFS= read -r line; do
        case $line in
        "once "*) [ "$r" = 1 ] || continue; line=${line#once } ;;
        esac
        args=${line#* }
        case $line in
        "py "*) set -- python3 "$PY_BENCH" ;;
        "sys go "*)
            [ -x "$tmp/be_go" ] || continue
            [ -n "$perf_syscalls" ] || command -v strace >/dev/null 2>&1 || continue
            args=${args#go }
            set -- syscount "$tmp/be_go" ;;
        "sys "*)
            [ -n "$perf_syscalls" ] || command -v strace >/dev/null 2>&1 ||
                { echo "  note: perf and strace missing, $line skipped"; continue; }
            set -- syscount "$BENCH_BIN" ;;
        "uv "* | "tbb "* | "go "*)
            [ -x "$tmp/be_${line%% *}" ] || continue
            set -- "$tmp/be_${line%% *}" ;;
        *) set -- "$BENCH_BIN" ;;
        esac
        load=$(others_load)
        # shellcheck disable=SC2086 # args is a list of words on purpose
        if "$@" $args >"$tmp/out" 2>"$tmp/err"; then
            grep -v '^{' "$tmp/out" | sed "s/^/  [load $load%] /"
            sed -n "s/^{/{\"round\":$r,\"load_pct\":$load,\"args\":\"$line\",/p" "$tmp/out" >>"$runs"
        else
            echo "  FAILED: $* $args" >&2
            sed 's/^/    /' "$tmp/err" >&2
            echo "$line" >>"$tmp/failed"
        fi
    done
    r=$((r + 1))
done
[ -s "$tmp/failed" ] && failed=1

mkdir -p "$(dirname "$RESULTS")" "$(dirname "$RESULTS_MD")"
# The folder named in the tables: relative to the source tree when inside it.
src_top=$(cd "$BENCH_SRC/.." && pwd)
OUT_SHOWN=$(cd "$(dirname "$RESULTS")" && pwd)
case $OUT_SHOWN in "$src_top"/*) OUT_SHOWN=${OUT_SHOWN#"$src_top"/}/ ;; esac
export OUT_SHOWN
python3 - "$runs" "$RESULTS" "$ROUNDS" "$QUICK" <<'PY'
"""Statistics for bench/run.sh: standard library only."""
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

runs_path, results_path, rounds, quick = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
runs = [json.loads(line) for line in open(runs_path) if line.strip()]


def pick(bench, impl, field, workers=None):
    """{round: value} for one configuration."""
    out = {}
    for r in runs:
        if r["bench"] == bench and r["impl"] == impl and (workers is None or r.get("workers") == workers):
            out[r["round"]] = r[field]
    return out


def summary(values):
    v = list(values)
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def ratio(num, den):
    """Per-round ratios num/den over the rounds both have."""
    return summary(num[k] / den[k] for k in num if k in den and den[k])


def fmt(x, unit):
    if x is None:
        return "-"
    if unit in ("tasks/s", "items/s", "MB/s"):
        return f"{x:,.0f}"
    if unit == "x":
        return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"
    if unit in ("us", "ms"):
        return f"{x:.3f}" if x < 1 else f"{x:.2f}"
    if unit == "B":
        return f"{x:.1f}"
    return f"{x:g}"


def span(s, unit):
    if not s:
        return "-"
    if s["n"] == 1:
        return fmt(s["median"], unit)
    return f"{fmt(s['median'], unit)} ({fmt(s['min'], unit)}-{fmt(s['max'], unit)})"


rows = []      # (figure, unit, summary, [(ratio summary, what it is against)])
figures = []   # the same, for results.json


def add(name, unit, values, *bases):
    """A figure; each base is (values, label): a per-round ratio column."""
    s = summary(values.values())
    ratios = [(ratio(values, b), label) for b, label in bases]
    rows.append((name, unit, s, ratios))
    figures.append({"figure": name, "unit": unit, "summary": s,
                    "ratios": [{"to": label, "summary": r} for r, label in ratios]})
    return s, (ratios[0][0] if ratios else None)


# ---- limits
cond50, cond99 = pick("cond", "limit", "p50_us"), pick("cond", "limit", "p99_us")
add("cond ping-pong p50", "us", cond50)
add("cond ping-pong p99", "us", cond99)
add("spin ping-pong p50", "us", pick("spin", "limit", "p50_us"))
add("spin ping-pong p99", "us", pick("spin", "limit", "p99_us"))

# ---- W1
w1 = {}
for impl in ("cfutures", "naive"):
    for w in (1, 2, 4):
        w1[impl, w] = pick("w1", impl, "tasks_per_s", w)
for w in (1, 2, 4):
    add(f"W1 cfutures {w} worker{'s' if w > 1 else ''}", "tasks/s", w1["cfutures", w],
        (w1["naive", w], "x naive"))
    add(f"W1 naive {w} worker{'s' if w > 1 else ''}", "tasks/s", w1["naive", w])
scale = {}
for impl in ("cfutures", "naive"):
    for w in (2, 4):
        scale[impl, w] = ratio(w1[impl, w], w1[impl, 1])
        rows.append((f"W1 {impl} scaling 1->{w} workers", "x", scale[impl, w], []))
        figures.append({"figure": f"W1 {impl} scaling 1->{w} workers", "unit": "x",
                        "summary": scale[impl, w], "ratios": []})

# ---- W2
cf50, cf99 = pick("w2", "cfutures", "p50_us", 2), pick("w2", "cfutures", "p99_us", 2)
nv50, nv99 = pick("w2", "naive", "p50_us", 2), pick("w2", "naive", "p99_us", 2)
w2p50, w2_vs_cond = add("W2 cfutures p50, 2 workers", "us", cf50, (cond50, "x cond p50"),
                        (nv50, "x naive"))
w2p99, _ = add("W2 cfutures p99, 2 workers", "us", cf99, (cond99, "x cond p99"), (nv99, "x naive"))
add("W2 naive p50, 2 workers", "us", nv50, (cond50, "x cond p50"))
add("W2 naive p99, 2 workers", "us", nv99, (cond99, "x cond p99"))

# ---- W5
cfb, nvb = pick("w5", "cfutures", "bytes_per_future"), pick("w5", "naive", "bytes_per_future")
w5, _ = add("W5 cfutures bytes/pending future", "B", cfb, (nvb, "x naive"))
add("W5 cfutures, second half alone", "B", pick("w5", "cfutures", "bytes_per_future_marginal"))
add("W5 naive bytes/pending future", "B", nvb)
add("W5 naive, second half alone", "B", pick("w5", "naive", "bytes_per_future_marginal"))
add("W5 cfutures submit loop", "s", pick("w5", "cfutures", "submit_s"),
    (pick("w5", "naive", "submit_s"), "x naive"))

# ---- W6
floor = pick("w6", "cfutures", "floor_ms")
w6n = {r["n"] for r in runs if r["bench"] == "w6"}
ac, _ = add("W6 as_completed", "ms", pick("w6", "cfutures", "as_completed_ms"), (floor, "x floor"))
w6first, _ = add("W6 as_completed, first rep", "ms", pick("w6", "cfutures", "as_completed_first_ms"),
                 (floor, "x floor"))
add("W6 wait ALL_COMPLETED", "ms", pick("w6", "cfutures", "wait_ms"), (floor, "x floor"))
add("W6 floor: future_done pass", "ms", floor)

# ---- W9, W10: composing futures (issue 13)
w9_plain = pick("w9", "cfutures", "plain_ms")
w9c, w9_ratio = add("W9 future_then chain, 2-worker pool", "ms", pick("w9", "cfutures", "chain_ms"),
                    (w9_plain, "x plain submit+result steps"))
w9i, w9i_ratio = add("W9 future_then chain, inline", "ms", pick("w9", "cfutures", "inline_ms"),
                     (w9_plain, "x plain submit+result steps"))
add("W9 plain submit+result steps", "ms", w9_plain)
w10_plain = pick("w10", "cfutures", "plain_ms")
_, w10a_ratio = add("W10 tasks + futures_all", "ms", pick("w10", "cfutures", "all_ms"),
                    (w10_plain, "x submits + results"))
_, w10y_ratio = add("W10 tasks + futures_any", "ms", pick("w10", "cfutures", "any_ms"),
                    (w10_plain, "x submits + results"))
add("W10 submits + results", "ms", w10_plain)
cq_raw = pick("cqwake", "cfutures", "raw_p50_us")
_, cq_ratio = add("completion queue fd round trip p50", "us", pick("cqwake", "cfutures", "p50_us"),
                  (cq_raw, "x raw eventfd"))
add("raw eventfd ping-pong p50", "us", cq_raw)

# ---- Python against the thread pool
py_w1 = {w: pick("w1", "python", "tasks_per_s", w) for w in (1, 2, 4)}
for w in (1, 2, 4):
    add(f"W1 Python ThreadPoolExecutor {w} worker{'s' if w > 1 else ''}", "tasks/s", py_w1[w])
OTHERS = (("libuv", "libuv uv_queue_work"), ("tbb", "oneTBB task_arena"), ("go", "Go worker pool"))
other_w1 = {}
for impl, label in OTHERS:
    for w in (1, 2, 4):
        other_w1[impl, w] = pick("w1", impl, "tasks_per_s", w)
        if other_w1[impl, w]:
            add(f"W1 {label} {w} worker{'s' if w > 1 else ''}", "tasks/s", other_w1[impl, w],
                (w1["cfutures", w], "x cfutures"))
best = {}  # per round: the best baseline at 2 workers
for base in [w1["naive", 2]] + [other_w1[i, 2] for i, _ in OTHERS]:
    for k, v in base.items():
        best[k] = max(best.get(k, 0), v)
w1_vs_best = ratio(w1["cfutures", 2], best)
rows.append(("W1 cfutures / best baseline, 2 workers", "x", w1_vs_best, []))
figures.append({"figure": "W1 cfutures / best baseline, 2 workers", "unit": "x",
                "summary": w1_vs_best, "ratios": []})
w1_vs_py = ratio(w1["cfutures", 2], py_w1[2])
rows.append(("W1 cfutures / Python, 2 workers", "x", w1_vs_py, []))
figures.append({"figure": "W1 cfutures / Python, 2 workers", "unit": "x", "summary": w1_vs_py,
                "ratios": []})
py50 = pick("w2", "python", "p50_us", 2)
add("W2 Python ThreadPoolExecutor p50, 2 workers", "us", py50, (cf50, "x cfutures"))
add("W2 Python ThreadPoolExecutor p99, 2 workers", "us", pick("w2", "python", "p99_us", 2))
add("W5 Python bytes/pending future", "B", pick("w5", "python", "bytes_per_future"),
    (cfb, "x cfutures"))
add("W6 Python as_completed", "ms", pick("w6", "python", "as_completed_ms"),
    (pick("w6", "cfutures", "as_completed_ms"), "x cfutures"))
add("W6 Python wait", "ms", pick("w6", "python", "wait_ms"))

# ---- process pool
pipe50 = pick("pipe", "limit", "p50_us")
add("pipe ping-pong p50", "us", pipe50)
add("pipe ping-pong p99", "us", pick("pipe", "limit", "p99_us"))
pp50 = pick("ppw2", "cfutures", "p50_us", 2)
ppw2, ppw2_vs_pipe = add("W2 process pool p50, 2 workers", "us", pp50, (pipe50, "x pipe p50"),
                         (pick("ppw2", "python", "p50_us", 2), "x Python PPE"))
add("W2 process pool p99, 2 workers", "us", pick("ppw2", "cfutures", "p99_us", 2))
add("W2 Python ProcessPoolExecutor p50, 2 workers", "us", pick("ppw2", "python", "p50_us", 2),
    (pipe50, "x pipe p50"))
w3 = {impl: pick("ppw3", impl, "tasks_per_s", 2)
      for impl in ("cfutures", "naive", "python-ppe", "python-mp-apply")}
w3s, w3_vs_naive = add("W3 process pool submit, 2 workers", "tasks/s", w3["cfutures"],
                       (pick("npw3", "naive", "tasks_per_s", 2), "x naive"),
                       (w3["python-ppe"], "x Python PPE"),
                       (w3["python-mp-apply"], "x Pool.apply_async"))
add("W3 naive C process pool (depth 32, batched)", "tasks/s", pick("npw3", "naive", "tasks_per_s", 2))
add("W3 Python ProcessPoolExecutor submit", "tasks/s", w3["python-ppe"])
add("W3 Python Pool.apply_async", "tasks/s", w3["python-mp-apply"])
w3m = pick("ppw3map", "cfutures", "tasks_per_s", 2)
mpmap = pick("ppw3map", "python-mp-map", "tasks_per_s", 2)
w3map, w3map_vs = add("W3 process pool executor_map, chunks of n/8", "items/s", w3m,
                      (mpmap, "x Pool.map"))
add("W3 Python Pool.map (chunksize n/8)", "items/s", mpmap)
echo = pick("echo", "limit", "mb_per_s", 1)
add("W3b pipe echo 64 KiB", "MB/s", echo)
w3b, w3b_vs_echo = add("W3b process pool 64 KiB echo", "MB/s", pick("ppw3b", "cfutures", "mb_per_s", 2),
                       (echo, "x pipe echo"),
                       (pick("npw3b", "naive", "mb_per_s", 2), "x naive"),
                       (pick("ppw3b", "python-ppe", "mb_per_s", 2), "x Python PPE"))
add("W3b process pool 64 KiB echo, later passes on the same pool (the slower of 2)", "MB/s",
    pick("ppw3b", "cfutures-warm", "mb_per_s", 2), (echo, "x pipe echo"))
w3bb, w3bb_vs_echo = add("W3b process pool 64 KiB echo, borrow_arg (no copy at submit)", "MB/s",
                         pick("ppw3b", "cfutures-borrow", "mb_per_s", 2), (echo, "x pipe echo"),
                         (pick("npw3b", "naive", "mb_per_s", 2), "x naive"))
add("W3b process pool 64 KiB echo, borrow_arg, later passes (the slower of 2)", "MB/s",
    pick("ppw3b", "cfutures-borrow-warm", "mb_per_s", 2), (echo, "x pipe echo"))
add("W3b naive C process pool 64 KiB", "MB/s", pick("npw3b", "naive", "mb_per_s", 2), (echo, "x pipe echo"))
add("W3b Python ProcessPoolExecutor 64 KiB", "MB/s", pick("ppw3b", "python-ppe", "mb_per_s", 2),
    (echo, "x pipe echo"))
w4t, _ = add("W4 thread pool speedup, 2 workers", "x", pick("w4", "thread", "speedup", 2))
w4p, _ = add("W4 process pool speedup, 2 workers", "x", pick("w4", "process", "speedup", 2))
add("W4 serial C (s, median pair)", "s", pick("w4", "thread", "serial_s", 2))
add("W4 Python ProcessPoolExecutor speedup (round 1 only)", "x", pick("w4", "python-ppe", "speedup", 2))
add("W4 Python serial (s)", "s", pick("w4", "python-ppe", "serial_s", 2))

# ---- issue 14: wake-ups (W7 start latency, W8 switches at rest, W1 syscalls)
w1sys, _ = add("W1 futex + sched_yield calls a task, 2 workers", "calls",
               pick("w1sys", "cfutures", "per_task", 2))
add("W1 naive futex + sched_yield calls a task, 2 workers", "calls",
    pick("w1sys", "naive", "per_task", 2))
add("W1 Go worker pool futex + sched_yield calls a task, 2 workers", "calls",
    pick("w1sys", "go", "per_task", 2))
# First-touch memory (issue 14): minor page faults of the submitting process
# a task, counted in the run (getrusage), so a machine where touching new
# memory costs more shows the same count. They count pages mapped, not
# traps: task blocks mapped 64 KiB at a time (MADV_POPULATE_WRITE, one call)
# count their 16 pages; `perf stat -e page-faults` counts the traps.
add("W1 page faults a task, 2 workers", "faults", pick("w1", "cfutures", "faults_per_task", 2))
add("W1 naive page faults a task, 2 workers", "faults", pick("w1", "naive", "faults_per_task", 2))
add("W3 process pool page faults a task (parent), 2 workers", "faults",
    pick("ppw3", "cfutures", "faults_per_task", 2))
add("W3 naive process pool page faults a task (parent), 2 workers", "faults",
    pick("npw3", "naive", "faults_per_task", 2))
# CPU a task, every process of the pool's (getrusage of the bench and of its
# waited-for descendants, from before the pool's creation to after its
# free, less the median of 3 create-warm-free cycles of the same pool):
# what W3's rate costs in CPU. Ours includes its spins (manager, workers),
# which take a CPU that is idle, so it moves with the scheduling too.
add("W3 process pool CPU a task, all processes, 2 workers", "ns",
    pick("ppw3", "cfutures", "cpu_ns_per_task", 2),
    (pick("npw3", "naive", "cpu_ns_per_task", 2), "x naive"))
add("W3 naive process pool CPU a task, all processes, 2 workers", "ns",
    pick("npw3", "naive", "cpu_ns_per_task", 2))
w7_50, w7_50_vs = add("W7 thread pool start p50 behind long tasks", "us",
                      pick("w7", "cfutures", "p50_us", 4), (pick("w7", "naive", "p50_us", 4), "x condvar pool"))
w7_99, w7_99_vs = add("W7 thread pool start p99 behind long tasks", "us",
                      pick("w7", "cfutures", "p99_us", 4), (pick("w7", "naive", "p99_us", 4), "x condvar pool"))
add("W7 plain condvar pool start p50", "us", pick("w7", "naive", "p50_us", 4))
add("W7 plain condvar pool start p99", "us", pick("w7", "naive", "p99_us", 4))
w11_50, w11_50_vs = add("W11 task waits for its own subtask, p50", "us",
                        pick("w11", "cfutures", "p50_us", 2), (pick("w11", "naive", "p50_us", 2), "x condvar pool"))
w11_m, w11_m_vs = add("W11 task waits for its own subtask, mean", "us",
                      pick("w11", "cfutures", "mean_us", 2), (pick("w11", "naive", "mean_us", 2), "x condvar pool"))
add("W11 plain condvar pool, p50", "us", pick("w11", "naive", "p50_us", 2))
add("W11 plain condvar pool, mean", "us", pick("w11", "naive", "mean_us", 2))
pipe99 = pick("pipe", "limit", "p99_us")
# Context, not a target: W7's conditions for a bare pipe (one byte wakes a
# process sleeping in read(), 2 ms apart, one way), the least a task start
# after 2 ms of quiet costs with one wake-up; the targets' pipe ping-pong
# runs back to back.
pipew7_50, pipew7_99 = pick("pipew7", "limit", "p50_us"), pick("pipew7", "limit", "p99_us")
add("pipe one-way wake 2 ms apart p50 (W7's conditions)", "us", pipew7_50)
add("pipe one-way wake 2 ms apart p99 (W7's conditions)", "us", pipew7_99)
pw7_50, pw7_50_vs = add("W7 process pool start p50 behind long tasks", "us",
                        pick("ppw7", "cfutures", "p50_us", 4), (pipe50, "x pipe p50"),
                        (pipew7_50, "x pipe one-way wake 2 ms apart"))
pw7_99, pw7_99_vs = add("W7 process pool start p99 behind long tasks", "us",
                        pick("ppw7", "cfutures", "p99_us", 4), (pipe99, "x pipe p99"),
                        (pipew7_99, "x pipe one-way wake 2 ms apart"))
w8 = {}
for impl in ("cfutures-thread", "cfutures-process"):
    for st in ("idle", "busy", "timers"):
        out = {}
        for r in runs:
            if r["bench"] == "w8" and r["impl"] == impl and r["state"] == st:
                out[r["round"]] = r["switches_per_s"]
        w8[impl, st], _ = add(f"W8 {impl[9:]} pool {st}: context switches/s", "1/s", out)

# The machine alone (bench_cfutures stalls): context for the worst-case rows.
add("machine alone: a spinning thread's gaps over 1 ms", "1/s",
    pick("stalls", "limit", "gaps_1ms_per_s"))
add("machine alone: that thread's longest gap", "us", pick("stalls", "limit", "gap_max_us"))
add("machine alone: a bare 2 ms sleep wakes late, p50", "us",
    pick("stalls", "limit", "sleep_p50_us"))
sleep99 = pick("stalls", "limit", "sleep_p99_us")
add("machine alone: a bare 2 ms sleep wakes late, p99", "us", sleep99)

w12 = {}
for kind in ("thread", "process"):
    for key, label, unit in (("late_p99_us", "delayed task start lateness p99", "us"),
                             ("drift_ms", "10 ms fixed-rate schedule drift over 100 runs", "ms")):
        out = {}
        for r in runs:
            if r["bench"] == "w12" and r["impl"] == "cfutures-" + kind:
                out[r["round"]] = r[key]
        bases = [(sleep99, "x a bare sleep's p99")] if unit == "us" else []
        w12[kind, key], _ = add(f"W12 {kind} pool {label}", unit, out, *bases)

w13 = {}
for key, label in (("running_max_us", "future_running() after the start, worst of 50"),
                   ("deadline_max_us", "10 ms deadline's failure after start + limit, worst of 50")):
    w13[key], _ = add(f"W13 process pool task that waited in a pipe: {label}", "us",
                      pick("w13", "cfutures-process", key))

loads = [r["load_pct"] for r in runs]

# ---- the table
print()
print("figure: median (min-max) over %d round(s); ratio: per round, then the median" % rounds)
head = ("figure", "unit", "median (min-max)", "ratio in the same round: median (min-max)")
table = [head]
for name, unit, s, ratios in rows:
    table.append((name, unit, span(s, unit),
                  "; ".join(f"{span(r, 'x')} {label}" for r, label in ratios if r)))
widths = [max(len(r[i]) for r in table) for i in range(4)]
for i, r in enumerate(table):
    print("  ".join(c.ljust(widths[j]) for j, c in enumerate(r)).rstrip())
    if i == 0:
        print("  ".join("-" * w for w in widths))
if loads:
    print(f"others' load before each run: median {statistics.median(loads):.0f}% "
          f"(min {min(loads)}%, max {max(loads)}%)")

# ---- targets
def med(s):
    return s["median"] if s else None


targets = []


def target(name, value, shown, ok):
    status = "n/a" if value is None else ("met" if ok else "MISSED")
    targets.append({"target": name, "value": value, "shown": shown, "status": status})


v = med(summary(w1["cfutures", 2].values()))
target("W1 >= 1,700,000 tasks/s at 2 workers", v, fmt(v, "tasks/s") + " tasks/s", v is not None and v >= 1.7e6)
v = med(scale["cfutures", 4])
target("W1 no slowdown 1->4 workers (4/1 >= 0.95, 5% noise allowance)", v,
       f"{fmt(v, 'x')} (min {fmt(scale['cfutures', 4]['min'], 'x') if v is not None else '-'})",
       v is not None and v >= 0.95)
v = med(w2_vs_cond)
target("W2 p50 <= 1.2x condvar ping-pong p50", v,
       f"{fmt(v, 'x')}x ({fmt(med(w2p50), 'us')} us vs {fmt(med(summary(cond50.values())), 'us')} us)",
       v is not None and v <= 1.2)
v = med(w2p99)
target("W2 p99 < 100 us", v, f"{fmt(v, 'us')} us", v is not None and v < 100)
v = med(w5)
marg = med(summary(pick("w5", "cfutures", "bytes_per_future_marginal").values()))
target("W5 <= 128 bytes per pending future (whole bytes)", v,
       f"{fmt(v, 'B')} B -> {round(v) if v is not None else '-'} B "
       f"(second half alone {fmt(marg, 'B')} B)", v is not None and round(v) <= 128)
v = med(ac)
target("W6 as_completed over 100,000 done futures <= 5 ms", v,
       f"{fmt(v, 'ms')} ms" + ("" if w6n == {100000} else f" (N={sorted(w6n)})"),
       v is not None and v <= 5 and w6n == {100000})

v = med(w1_vs_best)
present = ["naive"] + [i for i, _ in OTHERS if other_w1[i, 2]]
target("W1 ahead of the best baseline in the same round at 2 workers", v,
       f"{fmt(v, 'x')}x the best of {', '.join(present)}", v is not None and v >= 1)
v = med(w1_vs_py)
target("W1 >= 25x Python ThreadPoolExecutor at 2 workers", v, f"{fmt(v, 'x')}x", v is not None and v >= 25)
v = med(ppw2_vs_pipe)
target("W2 process pool p50 <= 2.5x pipe ping-pong p50", v,
       f"{fmt(v, 'x')}x ({fmt(med(ppw2), 'us')} us vs {fmt(med(summary(pipe50.values())), 'us')} us)",
       v is not None and v <= 2.5)
v = med(w3_vs_naive)
target("W3 process pool submit >= the naive C process pool", v,
       f"{fmt(v, 'x')}x ({fmt(med(w3s), 'tasks/s')} tasks/s)", v is not None and v >= 1)
v = med(w3map_vs)
target("W3 chunked executor_map >= Pool.map items/s", v,
       f"{fmt(v, 'x')}x ({fmt(med(w3map), 'tasks/s')} items/s)", v is not None and v >= 1)
v = med(w3b_vs_echo)
target("W3b 64 KiB >= 0.5x pipe echo", v, f"{fmt(v, 'x')}x ({fmt(med(w3b), 'MB/s')} MB/s)",
       v is not None and v >= 0.5)
v = med(w3bb_vs_echo)
target("W3b 64 KiB with borrow_arg >= 0.5x pipe echo", v,
       f"{fmt(v, 'x')}x ({fmt(med(w3bb), 'MB/s')} MB/s)", v is not None and v >= 0.5)
v = med(w4t)
target("W4 thread pool speedup >= 1.88", v, fmt(v, "x"), v is not None and v >= 1.88)
v = med(w6first)
target("W6 first as_completed call <= 5 ms (issue 14)", v, f"{fmt(v, 'ms')} ms",
       v is not None and v <= 5)
v = med(w1sys)
target("W1 < 0.01 futex + sched_yield calls a task (issue 14)", v, f"{fmt(v, 'calls')}",
       v is not None and v < 0.01)
v = med(w7_50_vs)
target("W7 thread pool p50 <= 1.5x condvar pool (issue 14)", v, f"{fmt(v, 'x')}x",
       v is not None and v <= 1.5)
v = med(w7_99_vs)
target("W7 thread pool p99 <= 2x condvar pool (issue 14)", v, f"{fmt(v, 'x')}x",
       v is not None and v <= 2)
v = med(pw7_50_vs)
target("W7 process pool p50 <= 2x pipe p50 (issue 14)", v, f"{fmt(v, 'x')}x",
       v is not None and v <= 2)
v = med(pw7_99_vs)
target("W7 process pool p99 <= 2x pipe p99 (issue 14)", v, f"{fmt(v, 'x')}x",
       v is not None and v <= 2)
v = med(w11_m_vs)
target("W11 nested subtask mean <= 1.0x condvar pool (issue 14)", v, f"{fmt(v, 'x')}x",
       v is not None and v <= 1.0)
for kind in ("thread", "process"):
    v = med(w8["cfutures-" + kind, "idle"])
    target(f"W8 {kind} pool idle <= 1 switch/s (issue 14)", v, f"{fmt(v, '1/s')}/s",
           v is not None and v <= 1)
    v = med(w8["cfutures-" + kind, "busy"])
    target(f"W8 {kind} pool asleep in long tasks <= 20 switches/s (issue 14)", v,
           f"{fmt(v, '1/s')}/s", v is not None and v <= 20)
    v = med(w8["cfutures-" + kind, "timers"])
    target(f"W8 {kind} pool with 10,000 delayed tasks pending <= 1 switch/s (issue 15)", v,
           f"{fmt(v, '1/s')}/s", v is not None and v <= 1)
for kind in ("thread", "process"):
    v = med(w12[kind, "late_p99_us"])
    target(f"W12 {kind} pool delayed task starts <= 2 ms late at p99 (issue 15)", v,
           f"{fmt(v, 'us')} us", v is not None and v <= 2000)
    v = med(w12[kind, "drift_ms"])
    target(f"W12 {kind} pool 10 ms fixed-rate schedule drifts < 1 ms in 100 runs (issue 15)",
           v, f"{fmt(v, 'ms')} ms", v is not None and abs(v) < 1)
v = med(w13["running_max_us"])
target("W13 process pool future_running() within 1 ms of a start, pipe-queued task (issue 14)",
       v, f"{fmt(v, 'us')} us", v is not None and v <= 1000)
v = med(w13["deadline_max_us"])
target("W13 process pool deadline fires within 5 ms, pipe-queued task (issue 14)", v,
       f"{fmt(v, 'us')} us", v is not None and v <= 5000)
v = med(w4p)
target("W4 process pool speedup >= 1.88", v, fmt(v, "x"), v is not None and v >= 1.88)

for label, r in (("W9 then chain (pool) <= 2x plain steps", w9_ratio),
                 ("W9 then chain (inline) <= 2x plain steps", w9i_ratio),
                 ("W10 futures_all <= 2x submits + results", w10a_ratio),
                 ("W10 futures_any <= 2x submits + results", w10y_ratio),
                 ("completion queue wake-up p50 <= 2x raw eventfd", cq_ratio)):
    v = med(r)
    target(label, v, f"{fmt(v, 'x')}x", v is not None and v <= 2)

print()
print("targets (from the issue)" + (" -- QUICK run: smaller N, indicative only" if quick else ""))
tw = max(len(t["target"]) for t in targets)
for t in targets:
    print(f"  {t['target'].ljust(tw)}  {t['status'].ljust(6)}  {t['shown']}")

doc = {
    "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "host": {"machine": platform.machine(), "kernel": platform.release(), "cpus": os.cpu_count()},
    "rounds": rounds,
    "quick": quick,
    "runs": runs,
    "figures": figures,
    "targets": targets,
}

def cpu_model():
    try:
        with open("/proc/cpuinfo") as fp:
            for line in fp:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


doc["host"].update({"cpu_model": cpu_model(), "compiler": os.environ.get("CC_VERSION", "unknown"),
                    "python": platform.python_version(),
                    "others_load_pct": summary(loads)})
with open(results_path, "w") as fp:
    json.dump(doc, fp, indent=1)
    fp.write("\n")
print(f"\nevery run and the summary: {results_path}")

# ---- the chart: W1 and W3 against their baselines (gnuplot, if installed)
md_path = os.environ.get("RESULTS_MD", "")
chart = None
if md_path and shutil.which("gnuplot"):
    chart = os.path.join(os.path.dirname(md_path) or ".", "bench-chart.png")
    data = os.path.join(os.path.dirname(runs_path), "chart.dat")
    cols = [("cfutures", {w: w1["cfutures", w] for w in (1, 2, 4)}),
            ("naive C pool", {w: w1["naive", w] for w in (1, 2, 4)}),
            ("Python ThreadPoolExecutor", py_w1)]
    cols += [(label, {w: other_w1[i, w] for w in (1, 2, 4)})
             for i, label in OTHERS if any(other_w1[i, w] for w in (1, 2, 4))]
    w1rows = []
    for w in (1, 2, 4):
        vals = [med(summary(c[w].values())) for _, c in cols]
        w1rows.append(f"{w} " + " ".join("NaN" if x is None else f"{x:.0f}" for x in vals))
    w1plot = ", ".join(f'"{data}" index 0 using {k + 2}' + (":xtic(1)" if k == 0 else "")
                       + f' title "{label}"' for k, (label, _) in enumerate(cols))
    w3vals = [("cfutures\\nsubmit", w3["cfutures"]),
              ("naive C\\n(depth 32)", pick("npw3", "naive", "tasks_per_s", 2)),
              ("Python\\nPPE", w3["python-ppe"]),
              ("Pool.\\napply_async", w3["python-mp-apply"]),
              ("cfutures\\nmap", w3m), ("Pool.map", mpmap)]
    w3rows = [f'"{label}" ' + ("NaN" if not v else f"{med(summary(v.values())):.0f}")
              for label, v in w3vals]
    with open(data, "w") as fp:
        fp.write("# W1: workers, then tasks/s of each series\n" + "\n".join(w1rows) + "\n\n\n")
        fp.write("# W3: label tasks/s\n" + "\n".join(w3rows) + "\n")
    script = f"""
set terminal pngcairo size 1200,560 font ",10" noenhanced
set output "{chart}"
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set grid ytics
set yrange [1000:*]
set key outside bottom center horizontal
set bmargin 5
set title "W1: tiny tasks, submit all then collect, tasks/s by workers (median of {rounds} round(s))"
plot {w1plot}
set title "W3: process pool, 2 workers, tasks/s (median)"
plot "{data}" index 1 using 2:xtic(1) notitle lc rgb "#3060c0"
unset multiplot
"""
    res = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if res.returncode != 0:
        print("chart: gnuplot failed, skipped:", res.stderr.strip()[:300])
        chart = None
    else:
        print(f"chart: {chart}")
elif md_path:
    print("chart: gnuplot is not installed, skipped (Debian package gnuplot-nox)")

# ---- RESULTS-generated.md: the tables, between the markers that
# bench/promote.sh splices into the committed bench/RESULTS.md
BEGIN = "<!-- make bench: begin (generated by bench/run.sh; edit outside these markers) -->"
END = "<!-- make bench: end -->"
if md_path:
    h = doc["host"]
    ls = summary(loads)
    out = [BEGIN, "# make bench: cfutures side by side with plain C and Python", ""]
    out.append(f"Generated {doc['generated']} by `make bench{' QUICK=1' if quick else ''}`: "
               f"{rounds} round(s); round r runs every configuration once, so compared rows "
               "ran side by side. A figure is the median (min-max) over the rounds; a ratio "
               "is taken within each round, then the median."
               + (" **QUICK run: smaller N, indicative only.**" if quick else ""))
    out.append("")
    out.append(f"- Machine: {h['cpus']} CPUs, {h['cpu_model']}, {h['machine']}, Linux {h['kernel']}")
    out.append(f"- Compiler: {h['compiler']} (-O2); Python {h['python']}")
    if ls:
        out.append(f"- Others' load (share of both CPUs used by other processes in the 0.25 s "
                   f"before each run): median {ls['median']:.0f}% ({ls['min']}-{ls['max']}%)")
    where = os.path.dirname(os.path.abspath(results_path))
    out.append(f"- Every run: `{os.path.basename(results_path)}`"
               + (f", the chart: `{os.path.basename(chart)}`" if chart else "")
               + f", in `{os.environ.get('OUT_SHOWN') or where}` of the run that wrote these "
               "tables (generated output, not committed with a promoted record)")
    out += ["", "## Targets (issue 7)", "", "| target | figure | status |", "|---|---|---|"]
    for t in targets:
        st = t["status"] if t["status"] != "MISSED" else "**MISSED**"
        out.append(f"| {t['target']} | {t['shown']} | {st} |")
    out += ["", "## Figures", "", "| figure | unit | median (min-max) | ratio in the same round |",
            "|---|---|---|---|"]
    for name, unit, sm, ratios in rows:
        rs = "; ".join(f"{span(r, 'x')} {label}" for r, label in ratios if r)
        out.append(f"| {name} | {unit} | {span(sm, unit)} | {rs} |")
    out += ["", END, ""]
    with open(md_path, "w") as fp:
        fp.write("\n".join(out))
    print(f"tables: {md_path} (bench/promote.sh makes them the committed bench/RESULTS.md's)")
PY

if [ "$failed" = 1 ]; then
    echo "run.sh: some runs failed:" >&2
    sed 's/^/  /' "$tmp/failed" >&2
    exit 1
fi

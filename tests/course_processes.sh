#!/usr/bin/env bash
# The course's multiprocessing samples (MuchCPU, Pool map of mp_worker,
# prime_factor, Queue reader/writer), run and checked. Each runs on the
# thread pool, and again on the process pool when this cfutures has one.
set -uo pipefail
src=${top_srcdir:-.}
bld=${top_builddir:-.}
S=$bld/samples/course
W=$(mktemp -d "${TMPDIR:-/tmp}/course-procs.XXXXXX")
trap 'rm -rf "$W"' EXIT
command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; }

failures=0 cases=0
bad() { echo "FAIL [$case]: $*"; failures=$((failures + 1)); }
# run CASE PROG ARGS...: stdout in $W/CASE.out, stderr in $W/CASE.err; rc and
# pid (the program's own pid, which a thread prints and a process does not).
run() {
    case=$1; shift
    cases=$((cases + 1))
    "$@" >"$W/$case.out" 2>"$W/$case.err" </dev/null &
    pid=$!
    wait "$pid"
    rc=$?
    out=$(cat "$W/$case.out")
    ! grep -q -E "Sanitizer|runtime error:" "$W/$case.err" || bad "sanitizer: $(cat "$W/$case.err")"
}
expect_rc() { [ "$rc" -eq "$1" ] || bad "exit $rc, wanted $1: $(cat "$W/$case.err")"; }

kinds="thread"
if grep -q process_pool_executor_new "$src/include/cfutures.h"; then
    kinds="thread process"
fi
cpus=$(getconf _NPROCESSORS_ONLN)

for kind in $kinds; do
    # --- much_cpu: one pid per CPU; threads print ours, processes others.
    run much-cpu-$kind "$S/much_cpu" -e "$kind" -n 20000000
    expect_rc 0
    [ "$(head -n 1 "$W/$case.out")" = "== MuchCPU as $kind ($cpus)" ] || bad "header: $out"
    pids=$(grep -E '^[0-9]+$' "$W/$case.out")
    [ "$(wc -l <<<"$pids")" -eq "$cpus" ] || bad "not $cpus pids: $out"
    for p in $pids; do
        if [ "$kind" = thread ]; then
            [ "$p" -eq "$pid" ] || bad "a thread printed pid $p, not $pid"
        else
            [ "$p" -ne "$pid" ] || bad "a process printed the parent's pid"
        fi
    done
    grep -q -E '^work took [0-9]+\.[0-9]+ seconds$' "$W/$case.out" || bad "no time: $out"

    # --- mp_pool: every pair waits its time and is DONE after.
    run mp-pool-$kind "$S/mp_pool" -e "$kind"
    expect_rc 0
    [ "$(wc -l <"$W/$case.out")" -eq 16 ] || bad "not 16 lines: $out"
    for pair in a2 b4 c6 d8 e1 f3 g5 h7; do
        x=${pair:0:1} n=${pair:1}
        w=$(grep -n -x -F " Processs $x	Waiting $n seconds" "$W/$case.out" | cut -d: -f1)
        d=$(grep -n -x -F " Process $x	DONE" "$W/$case.out" | cut -d: -f1)
        [ -n "$w" ] && [ -n "$d" ] && [ "$w" -lt "$d" ] || bad "$x: waiting/DONE: $out"
    done
    # Two at a time: a and b start first.
    [ "$(head -n 2 "$W/$case.out" | sort | cut -c1-11)" = " Processs a
 Processs b" ] || bad "a and b did not start first: $out"

    # --- prime_factor: the list, then each value's factors in order; the
    # factors are checked against a fast factorization, and the recursive
    # calls printed are 2 * (number of factors - 1) per value.
    run prime-factor-$kind "$S/prime_factor" -e "$kind" -n 24 -s 11
    expect_rc 0
    python3 - "$W/$case.out" <<'PY' || bad "prime_factor output is wrong: $(head -c 2000 "$W/$case.out")"
import ast, re, sys
lines = open(sys.argv[1]).read().splitlines()
values = ast.literal_eval(lines[0])
assert len(values) == 24 and all(40_000_000 <= v < 80_000_000 for v in values), values
def factor(v):
    out, d = [], 2
    while d * d <= v:
        while v % d == 0:
            out.append(d); v //= d
        d += 1
    return out + ([v] if v > 1 else [])
results = [l for l in lines[1:] if l.startswith("The factors of ")]
calls = [l for l in lines[1:] if re.fullmatch(r"( {4})+prime_factor\(\d+, \d+\) \d+", l)]
assert len(results) + len(calls) == len(lines) - 1, "stray lines"
assert results == ["The factors of %d are %s" % (v, factor(v)) for v in values], results
assert len(calls) == sum(2 * (len(factor(v)) - 1) for v in values), len(calls)
PY
    grep -q -E "^map of 24 values on a $kind pool of [0-9]+ workers: [0-9.]+ s$" \
        "$W/$case.err" || bad "no timing on stderr: $(cat "$W/$case.err")"
done

# The speedup, on the best pool this cfutures has (stderr; not checked:
# the machine may be busy).
kind=${kinds##* }
run prime-factor-serial "$S/prime_factor" -e "$kind" -n 8 -s 3 --serial
expect_rc 0
grep -q -E '^the same in one thread: [0-9.]+ s \(speedup [0-9.]+\)$' "$W/$case.err" ||
    bad "no speedup line: $(cat "$W/$case.err")"
run prime-factor-usage "$S/prime_factor" -n 0; expect_rc 2

# --- queue_rw: a reader process (fork + pipe), then a reader thread.
for mode in fork thread; do
    if [ $mode = fork ]; then run queue-rw-$mode "$S/queue_rw"; else run queue-rw-$mode "$S/queue_rw" -t; fi
    expect_rc 0
    [ "$(sed -E 's/took [0-9]+\.[0-9]+ seconds$/took T seconds/' "$W/$case.out")" = \
      "Sending 10000 numbers to Queue() took T seconds
Sending 100000 numbers to Queue() took T seconds
Sending 1000000 numbers to Queue() took T seconds" ] || bad "queue_rw lines: $out"
done

echo "course samples (processes on: $kinds): $cases cases, $failures failures"
[ "$failures" -eq 0 ]

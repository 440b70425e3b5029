#!/usr/bin/env bash
# One valgrind pass (issue 12, item 10): a small set of programs that go
# through the thread pool, the process pool (fork server and workers, which
# valgrind follows across fork) and the waiters, under memcheck with
#   --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
#   --trace-children=yes
# Builds its own build-valgrind/ (-O2 -g as a user builds: at -O1 a pointer
# that -O2 drops can stay on a child's stack and hide a leak; --disable-shared:
# the programs are real binaries, not libtool wrappers). Exits non-zero if any run has a
# memcheck error or a definite leak, printing the error summaries and the
# stacks of the definite leaks; the full logs stay in build-valgrind/vg/.
#   bash scripts/valgrind.sh              build dir build-valgrind
#   VG_DIR=/tmp/x bash scripts/valgrind.sh
# About 1 minute on 2 cores.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
command -v valgrind >/dev/null 2>&1 || bash scripts/setup.sh valgrind
bash scripts/autogen.sh
dir=${VG_DIR:-$top/build-valgrind}
mkdir -p "$dir"
cd "$dir"
[ -f Makefile ] || "$top/configure" -q --enable-werror --disable-shared CFLAGS="-O2 -g"
# Only the programs of RUNS below (a full build is most of this script's time).
make -j"$(nproc)" samples/quickstart samples/course/mp_pool samples/course/prime_factor \
    samples/course/word_count tests/check_future tests/check_waiters tests/check_task \
    tests/check_executor >/dev/null
logs=$dir/vg
rm -rf "$logs"
mkdir -p "$logs"

# Each run: a name, then the command. %p gives each process (the fork
# server and each worker too) its own log.
# Check runs in-process (CK_FORK=no) so that valgrind sees the tests
# themselves, and only the core TCase of each suite: the rest (deaths,
# limits, soaks) kill processes on purpose or time themselves, which under
# valgrind's ~20x slowdown tells nothing. check_executor's core runs over
# every executor kind, the process pool too; check_process_pool is left out:
# its tests count the process's fds, and valgrind opens its own.
# CFUTURES_MALLOC=1: futures from malloc, not the library's block chunks, so
# memcheck tracks each one (a leaked future is a definite leak).
export CFUTURES_MALLOC=1
export CK_FORK=no CK_RUN_CASE=core CK_DEFAULT_TIMEOUT=600 CK_TIMEOUT_MULTIPLIER=10
RUNS=(
    "quickstart samples/quickstart"
    "mp_pool_process samples/course/mp_pool -e process"
    "prime_factor_process samples/course/prime_factor -n 8 -s 1 -e process"
    "word_count samples/course/word_count $top/README.md $top/PORTING.md"
    "check_future tests/check_future"
    "check_waiters tests/check_waiters"
    "check_task tests/check_task"
    "check_executor tests/check_executor"
)
# vg NAME CMD...: one run, its exit status left in $logs/NAME.rc.
vg() {
    local name=$1 t0 rc=0
    shift
    t0=$(date +%s)
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
        --trace-children=yes --child-silent-after-fork=no --num-callers=20 \
        --log-file="$logs/$name.%p.log" "$@" >"$logs/$name.out" 2>&1 || rc=$?
    echo "$rc $(( $(date +%s) - t0 ))" >"$logs/$name.rc"
}
# As many runs at a time as there are cores (valgrind runs a program's
# threads one at a time), then the results in the order of RUNS.
running=0
for run in "${RUNS[@]}"; do
    if [ "$running" -ge "$(nproc)" ]; then
        wait -n
        running=$((running - 1))
    fi
    # shellcheck disable=SC2086 # the command is a list of words on purpose
    vg ${run%% *} ${run#* } &
    running=$((running + 1))
done
wait
failed=()
for run in "${RUNS[@]}"; do
    name=${run%% *}
    read -r rc secs <"$logs/$name.rc"
    # A child's error does not change the parent's status: read every log.
    errs=$(cat "$logs/$name".*.log | grep -c 'ERROR SUMMARY: [1-9]' || true)
    defs=$(cat "$logs/$name".*.log | grep -c 'definitely lost in' || true)
    echo "valgrind: $name: exit $rc, $(ls "$logs/$name".*.log | wc -l) process(es)," \
        "$defs definite leak record(s), $secs s"
    if [ "$rc" -ne 0 ] || [ "$errs" -ne 0 ] || [ "$defs" -ne 0 ]; then
        failed+=("$name")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo
    echo "valgrind: findings in: ${failed[*]}"
    # The distinct records, by their kind and first three frames (where in
    # the library), with how many records, processes and bytes each.
    for name in "${failed[@]}"; do
        echo "--- $name (logs: $logs/$name.*.log, output: $logs/$name.out)"
        awk '
            FNR == 1 { file++ }
            /^==[0-9]+== [0-9A-Z].*(definitely lost in|Invalid|uninitialised|Mismatched|overlap|Syscall param)/ {
                rec = 1; n = 0; bytes = ""; head = $0; sub(/^==[0-9]+== /, "", head)
                if (head ~ /definitely lost in/) {
                    bytes = head; sub(/ bytes in .*/, "", bytes); sub(/ .*/, "", bytes); gsub(/,/, "", bytes)
                    head = "definitely lost"
                }
                next }
            rec && /^==[0-9]+== +(at|by) / && n < 3 {
                l = $0; sub(/^==[0-9]+== +/, "", l); sub(/0x[0-9A-F]+: /, "", l)
                head = head "\n    " l; n++; next }
            rec && /^==[0-9]+== *$/ {
                rec = 0; count[head]++
                if (!((head, file) in seen)) { seen[head, file] = 1; procs[head]++ }
                if (bytes != "") {
                    if (!(head in lo) || bytes + 0 < lo[head]) lo[head] = bytes + 0
                    if (!(head in hi) || bytes + 0 > hi[head]) hi[head] = bytes + 0
                } }
            END { for (h in count) {
                      sz = (h in lo) ? (lo[h] == hi[h] ? ", " lo[h] " bytes each" : ", " lo[h] "-" hi[h] " bytes each") : ""
                      print "[" count[h] " record(s) in " procs[h] " process(es)" sz "] " h } }' \
            "$logs/$name".*.log
        tail -n 5 "$logs/$name.out" | sed 's/^/    out: /'
    done
    exit 1
fi
echo "valgrind: no error and no definite leak in ${#RUNS[@]} runs"

#!/bin/sh
# The MPI pool under mpiexec (built with --with-mpi): its suite in world
# mode (3 ranks), the conformance suite over it, then a rank running
# another executable, or another libcfutures, which must fail
# mpi_pool_serve at start-up. (check_mpi_pool run alone covers spawn mode.)
# Open MPI as root, oversubscribed, loopback only (README.md, "MPI pool").
b=${top_builddir:-.}
MPIEXEC=${MPIEXEC:-mpiexec}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo
export OMPI_MCA_oob_tcp_if_include=lo HWLOC_COMPONENTS=-gl
[ -x "$b/tests/check_mpi_pool" ] || { echo "no check_mpi_pool: skipped"; exit 77; }
# a libtool wrapper script cannot be exec'd by mpiexec: the real binary,
# with the uninstalled library
LD_LIBRARY_PATH=$b/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
bin=$b/tests/.libs/check_mpi_pool
[ -x "$bin" ] || bin=$b/tests/check_mpi_pool
other=$b/tests/.libs/mpi_other
[ -x "$other" ] || other=$b/tests/mpi_other
# Each job's limit, times CK_TIMEOUT_MULTIPLIER kept within [1, 3] as the
# programs' own limits are (a slow run under a sanitizer is no hang), rounded
# up (2.5: 3). The two whole suites get 60 s more than their program's hang
# guard, so the guard speaks first; the one-case runs (--caller-init,
# --silent-rank, --broken-rank) take seconds, and this limit ends them first.
k=$(awk -v m="${CK_TIMEOUT_MULTIPLIER:-1}" 'BEGIN { m += 0; if (m < 1) m = 1; if (m > 3) m = 3
    i = int(m); print (m > i) ? i + 1 : i }')
limit() { echo $(($1 * k)); }
fail=0
echo "== world mode: $MPIEXEC -n 3 check_mpi_pool"
# setsid -w: mpiexec in a session of its own, so that nothing it signals
# reaches make
setsid -w timeout $(($(limit 300) + 60)) "$MPIEXEC" -n 3 "$bin" </dev/null || { echo "world mode failed"; fail=1; }
# A program that calls MPI_Init before mpi_pool_serve and MPI_Finalize at
# its end (check_mpi_pool's test_mpi_caller_init runs it in spawn mode)
echo "== world mode: $MPIEXEC -n 3 check_mpi_pool --caller-init"
setsid -w timeout $(limit 150) "$MPIEXEC" -n 3 "$bin" --caller-init </dev/null ||
    { echo "world mode with MPI initialized by the program failed"; fail=1; }
# A rank alive but silent (stopped), in a job of its own: lost at the
# heartbeat limit, and left out of a pool made after (test_mpi_world_silent_rank).
# After a loss the master skips MPI_Finalize (Open MPI 4.1 can hang there),
# so mpiexec says the job ended improperly: Check's summary is the verdict.
echo "== world mode: $MPIEXEC -n 3 check_mpi_pool --silent-rank"
out=$(setsid -w timeout $(limit 150) "$MPIEXEC" -n 3 "$bin" --silent-rank </dev/null 2>&1)
echo "$out" | grep -E '^check_mpi_pool|Checks:|:[FE]:'
echo "$out" | grep -q '^100%: Checks: 1, Failures: 0, Errors: 0' ||
    { echo "$out"; echo "world mode with a silent rank failed"; fail=1; }
# A rank whose local process pool broke (its fork server killed), in a job
# of its own: left out of every pool made after (test_mpi_world_broken_rank).
# No rank is lost, so the job ends cleanly: mpiexec's exit and Check's summary.
echo "== world mode: $MPIEXEC -n 3 check_mpi_pool --broken-rank"
out=$(setsid -w timeout $(limit 150) "$MPIEXEC" -n 3 "$bin" --broken-rank </dev/null 2>&1)
rc=$?
echo "$out" | grep -E '^check_mpi_pool|Checks:|:[FE]:'
[ $rc = 0 ] && echo "$out" | grep -q '^100%: Checks: 1, Failures: 0, Errors: 0' ||
    { echo "$out"; echo "world mode with a broken rank failed (exit $rc)"; fail=1; }
# The conformance suite (check_executor's cases) over the MPI pool, world
# mode, 3 ranks: as it sends tasks ahead, then with CFUTURES_MPI_AHEAD=0
# (the queue cases apply only so). The gates are a file every rank maps.
conf=$b/tests/.libs/check_executor_mpi
[ -x "$conf" ] || conf=$b/tests/check_executor_mpi
for ahead in "" 0; do
    gates=$(mktemp "${TMPDIR:-/tmp}/cfutures-xgates.XXXXXX") || exit 1
    echo "== world mode: $MPIEXEC -n 3 check_executor_mpi${ahead:+ (CFUTURES_MPI_AHEAD=$ahead)}"
    CFUTURES_TEST_XGATES=$gates CFUTURES_MPI_AHEAD=$ahead \
        setsid -w timeout $(($(limit 540) + 60)) "$MPIEXEC" -x CFUTURES_TEST_XGATES -x CFUTURES_MPI_AHEAD \
        -n 3 "$conf" </dev/null || { echo "conformance over the MPI pool failed"; fail=1; }
    rm -f "$gates"
done
# A rank that never calls mpi_pool_serve (mpi_other --plain: MPI_Init, then
# a wait): the other's start-up gives up at CFUTURES_MPI_START_LIMIT (2 s
# here) with FUT_ETIMEDOUT, as master and as worker, where it waited for
# ever in MPI_Comm_dup. It skips MPI_Finalize then (the duplicate is
# pending), so mpiexec ends the job improperly: its message is the verdict.
for order in master worker; do
    echo "== a rank that never calls mpi_pool_serve, check_mpi_pool as the $order"
    if [ $order = master ]; then
        set -- -n 1 "$bin" --expect-start-timeout : -n 1 "$other" --plain
    else
        set -- -n 1 "$other" --plain : -n 1 "$bin" --expect-start-timeout
    fi
    out=$(CFUTURES_MPI_START_LIMIT=2 setsid -w timeout $(limit 90) "$MPIEXEC" \
        -x CFUTURES_MPI_START_LIMIT "$@" </dev/null 2>&1)
    echo "$out" | grep -E 'joined in|mpi_pool_serve returned'
    echo "$out" | grep -q 'not every rank of the job joined in 2 s' &&
        echo "$out" | grep -q "mpi_pool_serve returned $((-110)) (want $((-110)))" ||
        { echo "$out"; echo "the start-up did not time out as the $order"; fail=1; }
done
echo "== mismatched executable on rank 1"
setsid -w timeout $(limit 120) "$MPIEXEC" -n 1 "$bin" --expect-mismatch : -n 1 "$other" </dev/null ||
    { echo "mismatch case failed"; fail=1; }
# The same executable, but rank 1 loads a libcfutures with another build-id
# (a copy whose build-id note has its last byte changed): a shared build only.
lib=$b/lib/.libs/libcfutures.so.0
if [ -f "$lib" ] && command -v objcopy >/dev/null && ldd "$bin" | grep -q 'libcfutures\.so'; then
    echo "== rank 1 loads another libcfutures"
    d=$(mktemp -d "${TMPDIR:-/tmp}/cfutures-lib.XXXXXX") || exit 1
    objcopy -O binary --only-section=.note.gnu.build-id "$lib" "$d/note" &&
        printf '\377' | dd of="$d/note" bs=1 seek=$(($(wc -c <"$d/note") - 1)) \
            conv=notrunc 2>/dev/null &&
        objcopy --update-section .note.gnu.build-id="$d/note" "$lib" "$d/libcfutures.so.0" ||
        { echo "could not make the copy"; fail=1; }
    # The rank fails its start-up (so mpiexec fails); the master must see it.
    out=$(setsid -w timeout $(limit 120) "$MPIEXEC" -n 1 "$bin" --expect-mismatch : \
        -n 1 env LD_LIBRARY_PATH="$d" "$bin" </dev/null 2>&1)
    echo "$out" | grep -E 'not the master|mpi_pool_serve returned'
    echo "$out" | grep -q "is not the master's: every rank must load the same libcfutures" &&
        echo "$out" | grep -q 'mpi_pool_serve returned -10002 (want -10002)' ||
        { echo "the other libcfutures was not refused at start-up"; fail=1; }
    rm -rf "$d"
else
    echo "== another libcfutures on rank 1: skipped (a static build, or no objcopy)"
fi
# The sample of the README: world mode factors its values; a bad number is
# refused with the usage (exit 2) before any rank is spawned.
primes=$b/samples/.libs/mpi_primes
[ -x "$primes" ] || primes=$b/samples/mpi_primes
# Settings that are not numbers in range are said on stderr and ignored: the
# run goes on (a heartbeat of 1 ms once lost both live ranks of an idle pool).
echo "== samples/mpi_primes: world mode (with two bad settings), then bad numbers"
err=$(mktemp "${TMPDIR:-/tmp}/cfutures-err.XXXXXX") || exit 1
out=$(CFUTURES_MPI_HEARTBEAT=0.001 CFUTURES_MPI_PROCS=2.5 \
    setsid -w timeout $(limit 120) "$MPIEXEC" -n 3 "$primes" -q -n 4 -s 1 </dev/null 2>"$err") ||
    { echo "mpi_primes in world mode failed"; cat "$err"; fail=1; }
[ "$(echo "$out" | grep -c '^The factors of [0-9]* are \[')" = 4 ] ||
    { echo "mpi_primes did not factor its 4 values: $out"; fail=1; }
grep -qx 'cfutures: CFUTURES_MPI_HEARTBEAT=0.001 is not a number from 0.1 to 86400: ignored, the default used' "$err" &&
    [ "$(grep -c 'CFUTURES_MPI_PROCS=2.5 is not a whole number from 1 to 4096' "$err")" = 2 ] ||
    { echo "the bad settings were not each said once a process:"; cat "$err"; fail=1; }
rm -f "$err"
# (Each starts MPI alone, as a singleton, before it reads its options.)
# Each is named on stderr before the usage: "mpi_primes: -n wants ..., not '5x'".
for bad in "-n 5x" "-n 0" "-w abc" "-s 1e3"; do
    # shellcheck disable=SC2086 # the option and its value are two words
    msg=$(setsid -w timeout $(limit 120) "$primes" -q $bad </dev/null 2>&1 >/dev/null)
    rc=$?
    [ $rc = 2 ] || { echo "mpi_primes $bad: exit $rc, want 2"; fail=1; }
    echo "$msg" | head -n 1 | grep -q "^mpi_primes: ${bad% *} wants a whole number.*, not '${bad#* }'\$" ||
        { echo "mpi_primes $bad: no message naming it: $msg"; fail=1; }
done
exit $fail

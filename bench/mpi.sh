#!/bin/sh
# The MPI pool against mpi4py.futures and raw MPI (issue 16), from the build
# directory: make bench runs it when configured --with-mpi.
#   tiny-task throughput, 2 worker ranks: cfutures spawn + world modes,
#     mpi4py.futures MPIPoolExecutor(max_workers=2)   (target: >= 100x)
#   round trip p50: cfutures (world) vs raw MPI ping-pong (target <= 10x)
#     and mpi4py.futures
#   W4: samples/mpi_primes on 2 worker ranks vs one thread (target >= 1.85)
# Root in a container, loopback only: the environment of README "MPI pool".
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo
export OMPI_MCA_oob_tcp_if_include=lo HWLOC_COMPONENTS=-gl
MPIEXEC=${MPIEXEC:-mpiexec}
N=${MPI_BENCH_N:-200000}
ITERS=${MPI_BENCH_ITERS:-10000}
PY=${MPI4PY_PYTHON:-/usr/bin/python3}
src=${srcdir:-$(dirname "$0")/..}
LD_LIBRARY_PATH=$PWD/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
bin=bench/.libs/mpi_bench
[ -x "$bin" ] || bin=bench/mpi_bench
primes=samples/.libs/mpi_primes
[ -x "$primes" ] || primes=samples/mpi_primes
num() { sed -n "s/^$1 \([0-9.]*\).*/\1/p"; }
# Throughput: the median of TPUT_RUNS runs each, alternating (a run of the
# same program moved 217-457 K tasks/s on a 2-vCPU guest, run to run).
TPUT_RUNS=${MPI_TPUT_RUNS:-3}
mid() { echo "$1" | awk '{ print $(int((NF + 1) / 2)) }'; }
sorted() { tr ' ' '\n' | grep . | sort -n | tr '\n' ' ' | sed 's/ $//'; }
echo "MPI pool, 2 worker ranks, N=$N tiny tasks, $ITERS round trips"
ts_spawn="" ts_world=""
for _ in $(seq "$TPUT_RUNS"); do
    ts_spawn="$ts_spawn $("$bin" tput "$N" 2 </dev/null | num tput)"
    ts_world="$ts_world $("$MPIEXEC" -n 3 "$bin" tput "$N" 2 </dev/null | num tput)"
done
ts_spawn=$(echo "$ts_spawn" | sorted)
ts_world=$(echo "$ts_world" | sorted)
t_spawn=$(mid "$ts_spawn")
t_world=$(mid "$ts_world")
r_world=$("$MPIEXEC" -n 3 "$bin" rtt "$ITERS" 2 </dev/null | num "rtt p50")
r_spawn=$("$bin" rtt "$ITERS" 2 </dev/null | num "rtt p50")
r_raw=$("$MPIEXEC" -n 2 "$bin" pingpong "$ITERS" </dev/null | num "rtt p50")
if "$PY" -c 'import mpi4py.futures' 2>/dev/null; then
    pn=$((N / 20))
    ts_py=$(for _ in $(seq "$TPUT_RUNS"); do
        timeout 600 "$PY" "$src/bench/mpi4py_bench.py" tput "$pn" </dev/null | num tput
    done | sorted)
    t_py=$(mid "$ts_py")
    r_py=$(timeout 600 "$PY" "$src/bench/mpi4py_bench.py" rtt "$((ITERS / 10))" </dev/null |
        num "rtt p50")
else
    echo "mpi4py.futures not found ($PY; apt-get install python3-mpi4py): no comparison"
fi
# W4: the median of W4_RUNS runs (each one map and one serial pass), as the
# other pools' W4 rows take the median of their pairs
W4_RUNS=${MPI_W4_RUNS:-5}
w4s=$(for _ in $(seq "$W4_RUNS"); do
    "$MPIEXEC" -n 3 "$primes" -q --serial -n 64 -s 1 </dev/null 2>&1 >/dev/null |
        sed -n 's/.*speedup \([0-9.]*\).*/\1/p'
done | sorted)
w4=$(mid "$w4s")
echo "throughput, tasks/s, median of $TPUT_RUNS runs: spawn $t_spawn ($ts_spawn) world $t_world ($ts_world) mpi4py.futures ${t_py:-n/a} (${ts_py:-})"
[ -n "$t_py" ] && awk -v a="$t_world" -v b="$t_spawn" -v p="$t_py" 'BEGIN {
    printf "  vs mpi4py.futures: world %.0fx, spawn %.0fx (target >= 100x)\n", a / p, b / p }'
echo "round trip p50, us: world $r_world  spawn $r_spawn  raw MPI ping-pong $r_raw  mpi4py.futures ${r_py:-n/a}"
awk -v a="$r_world" -v r="$r_raw" 'BEGIN {
    printf "  world vs raw ping-pong: %.1fx (target <= 10x)\n", a / r }'
echo "W4 prime factorization (64 values), 2 worker ranks vs one thread: speedup $w4, median of $W4_RUNS runs: $w4s (target >= 1.85)"

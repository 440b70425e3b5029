#!/usr/bin/env python3
"""The Python baselines of bench/run.sh: concurrent.futures and multiprocessing
on the same workloads as bench_cfutures, standard library only.

Each command prints one line of JSON with the fields bench_cfutures prints for
the same workload (so run.sh reads both alike), then one line for people.

  py_bench.py w1 N WORKERS           ThreadPoolExecutor, tiny tasks
  py_bench.py w2 ITERS WORKERS tpe|ppe   submit-and-wait round trip
  py_bench.py w5 N                   bytes per pending future (ThreadPoolExecutor)
  py_bench.py w6 N REPS              as_completed / wait over done futures
  py_bench.py w3 ppe|mp-apply|mp-map N WORKERS [SIZE]
                                     process pools: tiny tasks, or SIZE-byte echo
  py_bench.py w4 WORKERS             64 factorizations: serial, then ProcessPoolExecutor
"""
import concurrent.futures as cf
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time

FORK = multiprocessing.get_context("fork")


def add_one(x):
    return x + 1


def echo(b):
    return b


def emit(doc, line):
    print(json.dumps(doc, separators=(",", ":")))
    print(line)


def pct(sorted_ns, p):
    rank = (len(sorted_ns) * p + 99) // 100
    return sorted_ns[max(rank, 1) - 1]


def w1(n, workers):
    with cf.ThreadPoolExecutor(max_workers=workers) as ex:
        list(ex.map(add_one, range(workers * 4)))  # start every thread
        t0 = time.perf_counter()
        fs = [ex.submit(add_one, i) for i in range(n)]
        for i, f in enumerate(fs):
            if f.result() != i + 1:
                sys.exit("w1: a wrong value")
        secs = time.perf_counter() - t0
    emit({"bench": "w1", "impl": "python", "n": n, "workers": workers,
          "tasks_per_s": round(n / secs), "secs": secs},
         f"w1 python ThreadPoolExecutor: {n} tiny tasks, {workers} workers: {n / secs:,.0f} tasks/s")


def w2(iters, workers, impl):
    ex = (cf.ThreadPoolExecutor(max_workers=workers) if impl == "tpe"
          else cf.ProcessPoolExecutor(max_workers=workers, mp_context=FORK))
    with ex:
        lat = []
        for i in range(500 + iters):
            t0 = time.perf_counter_ns()
            if ex.submit(add_one, 41).result() != 42:
                sys.exit("w2: a wrong value")
            t1 = time.perf_counter_ns()
            if i >= 500:
                lat.append(t1 - t0)
    lat.sort()
    p50, p99 = pct(lat, 50) / 1e3, pct(lat, 99) / 1e3
    bench = "w2" if impl == "tpe" else "ppw2"
    emit({"bench": bench, "impl": "python", "iters": iters, "workers": workers,
          "p50_us": p50, "p99_us": p99},
         f"{bench} python {impl}: {iters} round trips, {workers} workers: p50 {p50:.2f} us, p99 {p99:.2f} us")


def rss():
    with open("/proc/self/statm") as fp:
        return int(fp.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def w5(n):
    gate = threading.Event()
    entered = threading.Event()

    def blocker():
        entered.set()
        gate.wait()
        return 0

    fs = [None] * n
    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        b = ex.submit(blocker)
        entered.wait()
        r0 = rss()
        t0 = time.perf_counter()
        for i in range(n):
            fs[i] = ex.submit(add_one, 1)
        secs = time.perf_counter() - t0
        r1 = rss()
        gate.set()
        b.result()
        for f in fs:
            f.result()
    per = (r1 - r0) / n
    emit({"bench": "w5", "impl": "python", "n": n, "bytes_per_future": per, "submit_s": secs},
         f"w5 python ThreadPoolExecutor: {n} pending futures: {per:.0f} bytes each")


def w6(n, reps):
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        fs = [ex.submit(add_one, i) for i in range(n)]
        cf.wait(fs)
    ac, wt = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        k = sum(1 for _ in cf.as_completed(fs))
        t1 = time.perf_counter()
        done, _ = cf.wait(fs)
        t2 = time.perf_counter()
        if k != n or len(done) != n:
            sys.exit("w6: a wrong count")
        ac.append((t1 - t0) * 1e3)
        wt.append((t2 - t1) * 1e3)
    a, w = statistics.median(ac), statistics.median(wt)
    emit({"bench": "w6", "impl": "python", "n": n, "reps": reps, "as_completed_ms": a,
          "as_completed_first_ms": ac[0], "wait_ms": w},
         f"w6 python: {n} done futures: as_completed {a:.1f} ms, wait {w:.1f} ms")


def w3(impl, n, workers, size):
    args = [i.to_bytes(8, "little") + bytes(size - 8) for i in range(n)] if size else list(range(n))
    fn = echo if size else add_one
    if impl == "ppe":
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=FORK) as ex:
            list(ex.map(add_one, range(workers * 4)))  # start and warm the workers
            t0 = time.perf_counter()
            fs = [ex.submit(fn, a) for a in args]
            out = [f.result() for f in fs]
            secs = time.perf_counter() - t0
    else:
        with FORK.Pool(workers) as pool:
            pool.map(add_one, range(workers * 4))
            t0 = time.perf_counter()
            if impl == "mp-map":
                out = pool.map(fn, args)  # default chunksize: n / (4 * workers)
            else:
                rs = [pool.apply_async(fn, (a,)) for a in args]
                out = [r.get() for r in rs]
            secs = time.perf_counter() - t0
    want = args if size else [a + 1 for a in args]
    if out != want:
        sys.exit("w3: a wrong result")
    bench = "ppw3b" if size else ("ppw3map" if impl == "mp-map" else "ppw3")
    mbps = n * size * 2 / secs / 1e6
    emit({"bench": bench, "impl": "python-" + impl, "n": n, "workers": workers, "size": size,
          "tasks_per_s": round(n / secs), "mb_per_s": mbps, "secs": secs},
         f"{bench} python {impl}: {n} tasks, {workers} workers: {n / secs:,.0f} tasks/s"
         + (f", {mbps:.0f} MB/s both ways" if size else ""))


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return state, z ^ (z >> 31)


def prime_factor(value):
    """The course's version: every divisor up to value - 2."""
    for divisor in range(2, value - 1):
        if value % divisor == 0:
            return prime_factor(divisor) + prime_factor(value // divisor)
    return [value]


def w4(workers):
    st, vals = 20240601, []
    for _ in range(64):
        st, x = splitmix64(st)
        vals.append(40_000_000 + x % 40_000_000)
    t0 = time.perf_counter()
    serial = [prime_factor(v) for v in vals]
    t1 = time.perf_counter()
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=FORK) as ex:
        list(ex.map(add_one, range(workers * 4)))
        t2 = time.perf_counter()
        pooled = list(ex.map(prime_factor, vals))
        t3 = time.perf_counter()
    if pooled != serial:
        sys.exit("w4: the pool's factors differ")
    checksum = sum(sum(f) for f in serial)
    sp = (t1 - t0) / (t3 - t2)
    emit({"bench": "w4", "impl": "python-ppe", "workers": workers, "pairs": 1, "speedup": sp,
          "serial_s": t1 - t0, "pool_s": t3 - t2, "checksum": checksum},
         f"w4 python ProcessPoolExecutor: serial {t1 - t0:.2f} s, pool {t3 - t2:.2f} s, "
         f"speedup {sp:.2f} (checksum {checksum})")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, a = argv[1], argv[2:]
    if cmd == "w1" and len(a) == 2:
        w1(int(a[0]), int(a[1]))
    elif cmd == "w2" and len(a) == 3:
        w2(int(a[0]), int(a[1]), a[2])
    elif cmd == "w5" and len(a) == 1:
        w5(int(a[0]))
    elif cmd == "w6" and len(a) == 2:
        w6(int(a[0]), int(a[1]))
    elif cmd == "w3" and len(a) in (3, 4):
        w3(a[0], int(a[1]), int(a[2]), int(a[3]) if len(a) == 4 else 0)
    elif cmd == "w4" and len(a) == 1:
        w4(int(a[0]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

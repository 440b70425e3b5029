// be_tbb: W1 over oneTBB (task_arena::enqueue), an optional baseline of
// bench/run.sh, built by it when oneTBB's headers are installed.
//
//   be_tbb N WORKERS
//
// An arena of WORKERS threads that the submitter never joins; a future is a
// heap cell with a mutex and a condition variable, as in the naive C pool.
// global_control allows WORKERS + 1 threads: without it, TBB caps a 2-CPU
// process at 1 worker whatever the arena asks. Prints JSON like
// bench_cfutures w1.
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

namespace
{

struct Fut {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    long v = 0;
};

long collect(Fut &f)
{
    std::unique_lock<std::mutex> lk(f.mu);
    f.cv.wait(lk, [&] { return f.done; });
    return f.v;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long n = std::atol(argv[1]);
    int workers = std::atoi(argv[2]);
    if (n <= 0 || workers <= 0)
        return 2;
    tbb::global_control gc(tbb::global_control::max_allowed_parallelism,
                           static_cast<size_t>(workers) + 1);
    tbb::task_arena arena(workers, 0);
    std::vector<std::unique_ptr<Fut>> fs(static_cast<size_t>(n));
    auto submit = [&](long i) {
        auto f = std::make_unique<Fut>();
        Fut *p = f.get();
        arena.enqueue([p, i] {
            std::lock_guard<std::mutex> lk(p->mu);
            p->v = i + 1;
            p->done = true;
            p->cv.notify_one();
        });
        return f;
    };
    for (int i = 0; i < workers * 4; i++) { // start the arena's threads
        auto f = submit(0);
        collect(*f);
    }
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; i++)
        fs[static_cast<size_t>(i)] = submit(i);
    for (long i = 0; i < n; i++) {
        if (collect(*fs[static_cast<size_t>(i)]) != i + 1)
            return 1;
        fs[static_cast<size_t>(i)].reset();
    }
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"bench\":\"w1\",\"impl\":\"tbb\",\"n\":%ld,\"workers\":%d,"
                "\"tasks_per_s\":%.0f,\"secs\":%.6f}\n",
                n, workers, static_cast<double>(n) / secs, secs);
    std::printf("w1 oneTBB task_arena: %ld tiny tasks, %d workers: %.0f tasks/s\n", n,
                workers, static_cast<double>(n) / secs);
    return 0;
}

// SPDX-License-Identifier: MIT
// The CPU backend's threads. Its parallel regions are short and back to back (a decode step runs about a hundred,
// each tens of microseconds to a few milliseconds), so a worker spins between regions for a while before it blocks:
// a worker that went to sleep costs a wake-up per region, which took 10-15% of decode speed with OpenMP's default
// spin (docs/BENCHMARKS.md, "Threads that do not sleep between ops"). After DS_SPIN_US microseconds (default 2000)
// without work a worker sleeps, so an idle server costs no CPU. One region runs at a time; a region started while
// another runs (another thread, or nested) runs on its caller alone, which gives the same results (every op's
// arithmetic is independent of the thread count).
#pragma once
#include <cstdint>
#include <functional>

namespace ds::cpu {

// fn(t) for t = 0 .. width-1, one per thread (the caller is thread 0); returns when all have returned.
void parallel(int width, const std::function<void(int t)>& fn);

// fn(i) for i in [0, n), split into `width` contiguous ranges (thread t: [n t / width, n (t + 1) / width)).
void parallel_for(int64_t n, int width, const std::function<void(int64_t i)>& fn);

// fn(i, t) for i in [0, n), handed out one at a time to `width` threads (t = the running thread, for its scratch).
void parallel_dynamic(int64_t n, int width, const std::function<void(int64_t i, int t)>& fn);

}  // namespace ds::cpu

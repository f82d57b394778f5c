// SPDX-License-Identifier: MIT
#include "backend/cpu/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ds::cpu {

namespace {

thread_local bool t_in_region = false;

class Pool {
 public:
  Pool() {
    const char* s = std::getenv("DS_SPIN_US");
    spin_us_ = s && *s ? std::max(0L, std::strtol(s, nullptr, 10)) : 2000;
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void run(int width, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> region(region_mu_, std::try_to_lock);
    if (!region.owns_lock() || t_in_region) {  // another region runs: this one on the caller alone
      for (int t = 0; t < width; ++t) fn(t);
      return;
    }
    grow(width - 1);
    fn_ = &fn;
    width_ = width;
    remaining_.store(width - 1, std::memory_order_relaxed);
    // seq_cst pairs with the worker's sleepers_ increment and gen_ check: one of the two sees the other.
    gen_.fetch_add(1);
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_.notify_all();
    }
    t_in_region = true;
    fn(0);
    t_in_region = false;
    while (remaining_.load(std::memory_order_acquire) > 0) _mm_pause();
  }

 private:
  void grow(int n) {
    while (int(workers_.size()) < n) {
      const int index = int(workers_.size()) + 1;  // thread number in a region (0 is the caller)
      const uint64_t seen = gen_.load(std::memory_order_acquire);
      workers_.emplace_back([this, index, seen] { loop(index, seen); });
    }
  }

  void loop(int index, uint64_t seen) {
    t_in_region = true;  // a worker's own calls never start regions
    for (;;) {
      uint64_t g = gen_.load(std::memory_order_acquire);
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; g == seen; ++i) {
        _mm_pause();
        g = gen_.load(std::memory_order_acquire);
        if ((i & 255) == 0 && g == seen &&
            std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(spin_us_)) {
          std::unique_lock<std::mutex> lk(mu_);
          sleepers_.fetch_add(1);
          cv_.wait(lk, [&] { return gen_.load() != seen; });
          sleepers_.fetch_sub(1);
          g = gen_.load(std::memory_order_acquire);
        }
      }
      seen = g;
      if (stop_) return;
      if (index < width_) {
        (*fn_)(index);
        remaining_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::mutex region_mu_;  // one region at a time
  std::mutex mu_;         // sleeping workers
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> remaining_{0};
  std::atomic<int> sleepers_{0};
  const std::function<void(int)>* fn_ = nullptr;
  int width_ = 0;
  bool stop_ = false;
  long spin_us_ = 2000;
  std::vector<std::thread> workers_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void parallel(int width, const std::function<void(int t)>& fn) {
  if (width <= 1) return fn(0);
  pool().run(width, fn);
}

void parallel_for(int64_t n, int width, const std::function<void(int64_t i)>& fn) {
  width = int(std::min<int64_t>(width, n));
  if (width <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  parallel(width, [&](int t) {
    for (int64_t i = n * t / width, e = n * (t + 1) / width; i < e; ++i) fn(i);
  });
}

void parallel_dynamic(int64_t n, int width, const std::function<void(int64_t i, int t)>& fn) {
  width = int(std::min<int64_t>(width, n));
  if (width <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  parallel(width, [&](int t) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n; i = next.fetch_add(1, std::memory_order_relaxed))
      fn(i, t);
  });
}

}  // namespace ds::cpu

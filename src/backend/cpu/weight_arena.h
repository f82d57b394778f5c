// SPDX-License-Identifier: MIT
// The CPU backend's own copy of the weights, in huge-page memory (base/huge_pages.h). A decode step streams every
// weight once (1.9 GB at the V2-Lite 8-layer shape); through a file mapping that stream walks 4 KiB pages, and TLB
// misses and page-bounded hardware prefetch cost about a third of decode speed (docs/BENCHMARKS.md, "Weights in
// huge pages"). BF16 and F8_E4M3 weights that are only ever multiplied (WeightUse::MatmulOnly / MatmulRows) are laid out as Rows16
// (base/weight.h): blocks of 16 rows that the matmul kernels stream as one run, 16 outputs per vector, with one
// fixed-order chain per output whatever the number of tokens (so decode and prefill give every row the same bits).
// Each host range is copied once per layout: views sharing bytes (a scale grid shared by row slices) share the copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "base/huge_pages.h"
#include "base/weight.h"

namespace ds::cpu {

class WeightArena {
 public:
  explicit WeightArena(int n_threads) : nt_(n_threads) {}

  // A view of the same weight whose bytes (and scale grid) live in the arena; `matmul_only` (whole W or row slices at
  // multiples of 16 rows, only multiplied) allows Rows16.
  WeightView place(const WeightView& w, bool matmul_only);
  uint64_t bytes() const { return bytes_; }
  // Bytes of the arena on huge pages now (0 where the kernel does not say).
  uint64_t huge_page_bytes() const;

 private:
  const void* copy_range(const void* src, size_t bytes);
  const void* repack_rows16(const WeightView& w);
  uint8_t* reserve(size_t bytes);

  struct Chunk {
    HugePageBuffer mem;
    size_t used = 0;
  };
  std::vector<Chunk> chunks_;
  std::map<std::pair<const void*, WeightLayout>, std::pair<size_t, const void*>> copies_;  // source -> (bytes, copy)
  uint64_t bytes_ = 0;
  int nt_;
};

}  // namespace ds::cpu

// SPDX-License-Identifier: MIT
// ISA detection via __builtin_cpu_supports and the DS_CPU_ISA cap.
#include "backend/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace ds::cpu {

namespace {
Isa detect() {
  __builtin_cpu_init();
  Isa isa = Isa::Scalar;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    isa = Isa::Avx2;
  if (isa == Isa::Avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    isa = Isa::Avx512;
  // The bf16 level also converts FP8 with bit maps and byte tables (GFNI, AVX512-VBMI: Zen 4, Sapphire Rapids and
  // later).
  if (isa == Isa::Avx512 && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vbmi") &&
      __builtin_cpu_supports("gfni"))
    isa = Isa::Avx512Bf16;
  return isa;
}

Isa cap_from_env() {
  const char* s = std::getenv("DS_CPU_ISA");
  if (!s || !*s) return Isa::Avx512Bf16;
  if (!std::strcmp(s, "scalar")) return Isa::Scalar;
  if (!std::strcmp(s, "avx2")) return Isa::Avx2;
  if (!std::strcmp(s, "avx512")) return Isa::Avx512;
  return Isa::Avx512Bf16;
}

std::atomic<int>& cap_slot() {
  static std::atomic<int> cap{int(cap_from_env())};
  return cap;
}
}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Bf16: return "avx512bf16";
  }
  return "?";
}

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa active_isa() {
  const int cap = cap_slot().load(std::memory_order_relaxed);
  const int det = int(detected_isa());
  return Isa(cap < det ? cap : det);
}

void set_isa_cap(Isa cap) { cap_slot().store(int(cap), std::memory_order_relaxed); }

namespace {
std::atomic<uint64_t> g_matmuls[4][2];
}

void count_matmul(Isa isa, bool bf16) { g_matmuls[int(isa)][bf16].fetch_add(1, std::memory_order_relaxed); }
uint64_t matmul_count(Isa isa, bool bf16) { return g_matmuls[int(isa)][bf16].load(std::memory_order_relaxed); }

}  // namespace ds::cpu

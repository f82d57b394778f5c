// SPDX-License-Identifier: MIT
#include "dist/comm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "base/timer.h"

namespace ds::dist {

void Comm::all_reduce_sum(float* x, size_t n) {
  const int N = size();
  if (N == 1) return;
  gather_.resize(size_t(N) * n);
  all_gather(x, gather_.data(), std::vector<size_t>(size_t(N), n * sizeof(float)));
  for (size_t i = 0; i < n; ++i) {
    float s = gather_[i];
    for (int r = 1; r < N; ++r) s += gather_[size_t(r) * n + i];
    x[i] = s;
  }
}

namespace {
class SingleComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single"; }
  void broadcast(void*, size_t, int) override {}
  void all_gather(const void* in, void* out, const std::vector<size_t>& counts) override {
    if (out != in) std::memmove(out, in, counts.at(0));
  }
  void all_to_all(const void* in, const std::vector<size_t>& send, void* out, const std::vector<size_t>&) override {
    if (out != in) std::memmove(out, in, send.at(0));
  }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
};
}  // namespace

std::unique_ptr<Comm> make_single() { return std::make_unique<SingleComm>(); }

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

int local_ranks() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* s = std::getenv(v)) {
      const int n = std::atoi(s);
      if (n > 0) return n;
    }
  return 1;
}

int local_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* s = std::getenv(v)) return std::max(0, std::atoi(s));
  return 0;
}

std::unique_ptr<Comm> make_world() { return launched_by_mpi() && have_mpi() ? make_mpi() : make_single(); }

Range split(int64_t total, int parts, int part, int64_t unit) {
  DS_CHECK(parts > 0 && part >= 0 && part < parts && unit > 0, "split: part ", part, " of ", parts);
  const int64_t units = (total + unit - 1) / unit, base = units / parts, extra = units % parts;
  // The first `extra` parts get one unit more.
  const int64_t b = part * base + std::min<int64_t>(part, extra), n = base + (part < extra ? 1 : 0);
  Range r{std::min(total, b * unit), std::min(total, (b + n) * unit)};
  return r;
}

std::vector<Range> split_all(int64_t total, int parts, int64_t unit) {
  std::vector<Range> r;
  for (int p = 0; p < parts; ++p) r.push_back(split(total, parts, p, unit));
  return r;
}

}  // namespace ds::dist

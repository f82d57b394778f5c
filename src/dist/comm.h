// SPDX-License-Identifier: MIT
// The communicator: how the processes of one model run (tensor- and expert-parallel ranks, docs/SCALING.md) move
// data between them. It sits beside ops::Backend: the runtime owns one and hands it to the model, whose layers call
// these collectives where parallelism needs them. Implementations: one process (does nothing), MPI (CPU processes on
// one machine or many, dist/comm_mpi.cpp) and NCCL (GPUs, backend/cuda/nccl_comm.cpp). Buffers live in the memory of
// the backend the model computes on (host memory for cpu/ref with MPI, device memory for cuda with NCCL).
// Every rank must call the same collectives in the same order with the same sizes. One thread at a time.
// broadcast moves control data in host memory; all_gather, all_to_all and all_reduce_sum move the model's
// activations in the backend's memory (the same host memory for MPI).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ds::dist {

// What the collectives cost so far (benchmarks: bytes communicated per token, time in collectives per step).
struct CommStats {
  uint64_t calls = 0;
  uint64_t bytes = 0;    // bytes this rank contributed (sent) to collectives
  double seconds = 0;    // wall time inside collectives, waiting for slower ranks included
};

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "single", "mpi", "nccl"
  bool root() const { return rank() == 0; }

  // `bytes` bytes at `data` on rank `root` copied to every other rank's `data`.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Rank r's counts[r] bytes from `in` placed at `out` + Σ counts[0..r), on every rank. counts has size() entries.
  virtual void all_gather(const void* in, void* out, const std::vector<size_t>& counts) = 0;
  // Rank r sends send_counts[q] bytes (at offsets Σ send_counts[0..q) of `in`) to rank q, and receives recv_counts[q]
  // bytes from each q into `out` (in rank order).
  virtual void all_to_all(const void* in, const std::vector<size_t>& send_counts, void* out,
                          const std::vector<size_t>& recv_counts) = 0;
  // x[i] := Σ over ranks of x[i]. The sum is formed in rank order (rank 0's value first) on every rank, so every
  // rank holds the same bits and a run is reproducible (MPI_Allreduce promises neither for floats). The base
  // implementation gathers every rank's x and adds in order: N·n floats per rank, which for the activation sizes
  // of one decode step costs less than the latency of a second collective.
  virtual void all_reduce_sum(float* x, size_t n);
  virtual void barrier() = 0;
  // Ends every process of the job with `code` (after a rank-local error the others would wait forever).
  [[noreturn]] virtual void abort(int code) = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  CommStats stats_;
  std::vector<float> gather_;  // all_reduce_sum's gathered copies
};

// One process: size 1, every collective a copy (or nothing).
std::unique_ptr<Comm> make_single();
// Whether this process was started by an MPI launcher (mpirun / mpiexec / srun set rank variables).
bool launched_by_mpi();
// MPI_COMM_WORLD (initialises MPI; finalised when the Comm is destroyed). Throws ds::Error if this build has no MPI.
std::unique_ptr<Comm> make_mpi();
// The world this process belongs to: MPI when launched by mpirun (and built with MPI), else one process.
std::unique_ptr<Comm> make_world();
// Ranks started by the same launcher on this machine (to share its cores), 1 when unknown; this rank's index among
// them (its GPU), 0 when unknown.
int local_ranks();
int local_rank();
// Whether this build can run across processes (MPI found at configure time).
bool have_mpi();

// An even cut of `total` items into `parts` contiguous ranges in whole units of `unit` items (the last range takes
// the remainder): part p is [begin, end). Used for heads, rows, experts and vocabulary.
struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
  bool contains(int64_t i) const { return i >= begin && i < end; }
};
Range split(int64_t total, int parts, int part, int64_t unit = 1);
std::vector<Range> split_all(int64_t total, int parts, int64_t unit = 1);

}  // namespace ds::dist

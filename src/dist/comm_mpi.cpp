// SPDX-License-Identifier: MIT
// The communicator over MPI (MPI_COMM_WORLD): Open MPI from Debian in the tests, any MPI-3 library in general.
// MPI is initialised at MPI_THREAD_SERIALIZED: the server calls collectives from its engine thread, not main().
// Errors stay fatal (MPI_ERRORS_ARE_FATAL): when a rank dies the launcher ends the job and names the rank.
#include "dist/comm.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "base/error.h"
#include "base/timer.h"

#ifdef DS_HAVE_MPI
// The C API only (Open MPI and MPICH otherwise pull in their deprecated C++ bindings).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#endif

namespace ds::dist {

#ifdef DS_HAVE_MPI
bool have_mpi() { return true; }

namespace {
// MPI counts are int: large transfers go as MPI_BYTE in pieces below INT_MAX.
int count_of(size_t bytes) {
  DS_CHECK(bytes <= size_t(INT_MAX), "mpi: one transfer of ", bytes, " bytes exceeds ", INT_MAX);
  return int(bytes);
}

class MpiComm final : public Comm {
 public:
  MpiComm() {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
      DS_CHECK(provided >= MPI_THREAD_SERIALIZED, "mpi: the MPI library gives thread level ", provided,
               ", the server needs MPI_THREAD_SERIALIZED");
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiComm() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (owns_ && !fin) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void broadcast(void* data, size_t bytes, int root) override {
    Timer t;
    for (size_t off = 0; off < bytes; off += kPiece)
      MPI_Bcast(static_cast<uint8_t*>(data) + off, count_of(std::min(kPiece, bytes - off)), MPI_BYTE, root,
                MPI_COMM_WORLD);
    account(rank_ == root ? bytes : 0, t);
  }
  void all_gather(const void* in, void* out, const std::vector<size_t>& counts) override {
    DS_CHECK(int(counts.size()) == size_, "mpi all_gather: ", counts.size(), " counts for ", size_, " ranks");
    Timer t;
    const size_t n = size_t(size_);
    std::vector<int> cnt(n), disp(n);
    size_t off = 0;
    for (int r = 0; r < size_; ++r) {
      cnt[size_t(r)] = count_of(counts[size_t(r)]);
      disp[size_t(r)] = count_of(off);
      off += counts[size_t(r)];
    }
    MPI_Allgatherv(in == out ? MPI_IN_PLACE : in, cnt[size_t(rank_)], MPI_BYTE, out, cnt.data(), disp.data(), MPI_BYTE,
                   MPI_COMM_WORLD);
    account(counts[size_t(rank_)], t);
  }
  void all_to_all(const void* in, const std::vector<size_t>& send_counts, void* out,
                  const std::vector<size_t>& recv_counts) override {
    DS_CHECK(int(send_counts.size()) == size_ && int(recv_counts.size()) == size_, "mpi all_to_all: counts for ",
             send_counts.size(), "/", recv_counts.size(), " ranks, expected ", size_);
    Timer t;
    const size_t n = size_t(size_);
    std::vector<int> sc(n), sd(n), rc(n), rd(n);
    size_t so = 0, ro = 0, sent = 0;
    for (int r = 0; r < size_; ++r) {
      sc[size_t(r)] = count_of(send_counts[size_t(r)]);
      sd[size_t(r)] = count_of(so);
      rc[size_t(r)] = count_of(recv_counts[size_t(r)]);
      rd[size_t(r)] = count_of(ro);
      so += send_counts[size_t(r)];
      ro += recv_counts[size_t(r)];
      if (r != rank_) sent += send_counts[size_t(r)];
    }
    MPI_Alltoallv(in, sc.data(), sd.data(), MPI_BYTE, out, rc.data(), rd.data(), MPI_BYTE, MPI_COMM_WORLD);
    account(sent, t);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  static constexpr size_t kPiece = size_t(1) << 30;
  void account(size_t bytes, const Timer& t) {
    ++stats_.calls;
    stats_.bytes += bytes;
    stats_.seconds += t.seconds();
  }
  int rank_ = 0, size_ = 1;
  bool owns_ = false;
};
}  // namespace

std::unique_ptr<Comm> make_mpi() { return std::make_unique<MpiComm>(); }
#else
bool have_mpi() { return false; }
std::unique_ptr<Comm> make_mpi() {
  fail("this build has no MPI (install libopenmpi-dev and reconfigure): it runs as one process only");
}
#endif

}  // namespace ds::dist

// SPDX-License-Identifier: MIT
#include "backend/cuda/nccl_comm.h"

#include <cuda_runtime.h>

#include <cstdlib>

#include "base/error.h"
#include "base/timer.h"

#ifdef DS_HAVE_NCCL
#include <nccl.h>
#endif

namespace ds::cuda {

#ifdef DS_HAVE_NCCL
bool have_nccl() { return true; }

namespace {
#define DS_NCCL(call)                                                                         \
  do {                                                                                        \
    const ncclResult_t r_ = (call);                                                           \
    DS_CHECK(r_ == ncclSuccess, "nccl: ", #call, " failed: ", ncclGetErrorString(r_));        \
  } while (0)

class NcclComm final : public dist::Comm {
 public:
  NcclComm(dist::Comm& bootstrap, int device) : boot_(bootstrap), device_(device) {
    DS_CHECK(cudaSetDevice(device) == cudaSuccess, "nccl: cannot use GPU ", device);
    ncclUniqueId id{};
    if (boot_.rank() == 0) DS_NCCL(ncclGetUniqueId(&id));
    boot_.broadcast(&id, sizeof id, 0);
    DS_NCCL(ncclCommInitRank(&comm_, boot_.size(), id, boot_.rank()));
    DS_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) == cudaSuccess, "nccl: no stream");
  }
  ~NcclComm() override {
    if (stream_) cudaStreamDestroy(stream_);
    if (comm_) ncclCommDestroy(comm_);
  }
  int rank() const override { return boot_.rank(); }
  int size() const override { return boot_.size(); }
  std::string name() const override { return "nccl"; }
  // Host memory: control data goes through the bootstrap communicator.
  void broadcast(void* data, size_t bytes, int root) override { boot_.broadcast(data, bytes, root); }
  void all_gather(const void* in, void* out, const std::vector<size_t>& counts) override {
    Timer t;
    // Grouped broadcasts: one per rank's part (NCCL's all-gather needs equal parts).
    size_t off = 0;
    DS_NCCL(ncclGroupStart());
    for (int r = 0; r < size(); ++r) {
      void* dst = static_cast<uint8_t*>(out) + off;
      DS_NCCL(ncclBroadcast(r == rank() ? in : dst, dst, counts[size_t(r)], ncclUint8, r, comm_, stream_));
      off += counts[size_t(r)];
    }
    DS_NCCL(ncclGroupEnd());
    finish(counts[size_t(rank())], t);
  }
  void all_to_all(const void* in, const std::vector<size_t>& send, void* out, const std::vector<size_t>& recv) override {
    Timer t;
    size_t so = 0, ro = 0, sent = 0;
    DS_NCCL(ncclGroupStart());
    for (int r = 0; r < size(); ++r) {
      DS_NCCL(ncclSend(static_cast<const uint8_t*>(in) + so, send[size_t(r)], ncclUint8, r, comm_, stream_));
      DS_NCCL(ncclRecv(static_cast<uint8_t*>(out) + ro, recv[size_t(r)], ncclUint8, r, comm_, stream_));
      so += send[size_t(r)];
      ro += recv[size_t(r)];
      if (r != rank()) sent += send[size_t(r)];
    }
    DS_NCCL(ncclGroupEnd());
    finish(sent, t);
  }
  void all_reduce_sum(float*, size_t) override {
    // The model gathers and adds in a fixed order itself (model/parallel.cpp); a device-side rank-order sum is not
    // needed yet.
    fail("nccl: all_reduce_sum on device memory is not implemented");
  }
  void barrier() override { boot_.barrier(); }
  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    boot_.abort(code);
    std::_Exit(code);
  }

 private:
  void finish(size_t bytes, const Timer& t) {
    DS_CHECK(cudaStreamSynchronize(stream_) == cudaSuccess, "nccl: collective failed on GPU ", device_);
    ++stats_.calls;
    stats_.bytes += bytes;
    stats_.seconds += t.seconds();
  }
  dist::Comm& boot_;
  int device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};
}  // namespace

std::unique_ptr<dist::Comm> make_nccl_comm(dist::Comm& bootstrap, int device) {
  return std::make_unique<NcclComm>(bootstrap, device);
}
#else
bool have_nccl() { return false; }
std::unique_ptr<dist::Comm> make_nccl_comm(dist::Comm&, int) {
  fail("this CUDA build has no NCCL: GPUs across processes need it (the CUDA toolkit's libnccl)");
}
#endif

}  // namespace ds::cuda

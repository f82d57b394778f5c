// SPDX-License-Identifier: MIT
// CudaBackend: ops::Backend on one GPU. Every op checks its pointers against the backend's own allocations, then
// enqueues kernels on the backend's stream and returns: the host waits only in download() and sync().
#include "backend/cuda/cuda_backend.h"

#include <cstring>
#include <map>
#include <vector>

#include "backend/cuda/check.h"
#include "backend/cuda/device_memory.h"
#include "backend/cuda/launch.h"
#include "base/kv_rows.h"

namespace ds::cuda {

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  if (n == 0 && why) *why = "the CUDA runtime reports no device";
  return n;
}

namespace {

constexpr size_t f4 = sizeof(float);

class CudaBackend final : public ops::Backend {
 public:
  explicit CudaBackend(int device) : ctx_(std::make_shared<StreamContext>()), mem_(nullptr) {
    std::string why;
    const int n = device_count(&why);
    DS_CHECK(n > 0, "--backend cuda: no CUDA device available (", why, ")");
    DS_CHECK(device >= 0 && device < n, "--backend cuda: device ", device, " does not exist (", n, " devices)");
    ctx_->device = device;
    DS_CU(cudaSetDevice(device));
    DS_CU(cudaStreamCreateWithFlags(&ctx_->stream, cudaStreamNonBlocking));
    // Keep freed stream-ordered memory in the pool instead of returning it to the driver at every sync: scratch
    // buffers are reused every step.
    cudaMemPool_t pool;
    DS_CU(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t keep = UINT64_MAX;
    DS_CU(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    mem_ = std::make_unique<DeviceMemory>(ctx_);
  }
  ~CudaBackend() override {
    cudaSetDevice(ctx_->device);
    cudaStreamSynchronize(ctx_->stream);  // expert tables and weights must outlive the kernels reading them
    for (auto& t : tables_) retired_tables_.push_back(t.second);
    for (const Table& t : retired_tables_) {
      cudaFree(t.dev);
      cudaFreeHost(t.pinned);
    }
  }

  std::string name() const override { return "cuda"; }
  std::unique_ptr<ops::Buffer> alloc(size_t bytes) override { use(); return mem_->alloc(bytes); }
  void upload(void* dst, const void* src, size_t n) override {
    if (!n) return;
    use();
    mem_->check_device(dst, n, "upload", "destination");
    // From pageable memory the runtime stages `src` before returning, so the caller may reuse it at once.
    DS_CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, ctx_->stream));
  }
  void download(void* dst, const void* src, size_t n) override {
    if (!n) return;
    use();
    mem_->check_device(src, n, "download", "source");
    DS_CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, ctx_->stream));
    DS_CU(cudaStreamSynchronize(ctx_->stream));  // the host reads `dst` next
  }
  WeightView prepare_weight(const WeightView& w, ops::WeightUse) override { use(); return mem_->prepare_weight(w); }
  std::string weights_placement() const override { return "copied into device memory"; }
  void sync() override {
    use();
    DS_CU(cudaStreamSynchronize(ctx_->stream));
  }

  void matmul(const ops::MatmulParams& p) override {
    if (p.M <= 0 || p.N <= 0) return;
    use();
    mem_->check_weight(p.w, "matmul");
    check_rows(p.x, p.M, p.ldx, p.K, "matmul", "x");
    check_rows(p.y, p.M, p.ldy, p.N, "matmul", "y");
    launch_matmul(p, ctx_->stream);
  }
  void rms_norm(const ops::RmsNormParams& p) override {
    if (p.M <= 0) return;
    use();
    mem_->check_weight(p.w, "rms_norm");
    check_rows(p.x, p.M, p.ldx, p.n, "rms_norm", "x");
    check_rows(p.y, p.M, p.ldy, p.n, "rms_norm", "y");
    launch_rms_norm(p, ctx_->stream);
  }
  // DeepSeek-V3.2's sparse attention (LayerNorm keys, the indexer, attention over selected positions) runs on the
  // cpu and ref backends only for now: refused by name rather than computed wrongly.
  void layer_norm(const ops::LayerNormParams&) override {
    fail("cuda backend: layer_norm (DeepSeek-V3.2's indexer keys) is not implemented yet; use --backend cpu");
  }
  void indexer(const ops::IndexerParams&) override {
    fail("cuda backend: the lightning indexer (DeepSeek-V3.2 sparse attention) is not implemented yet; use --backend cpu");
  }
  void fp8_round(const ops::Fp8RoundParams&) override {
    fail("cuda backend: fp8_round (DeepSeek-V3.2's FP8 indexer numerics) is not implemented yet; use --backend cpu");
  }
  void rope(const ops::RopeParams& p) override {
    if (p.M <= 0 || p.n_heads <= 0 || p.dim <= 0) return;
    use();
    mem_->check_device(p.pos, size_t(p.M) * 4, "rope", "pos");
    mem_->check_device(p.inv_freq, size_t(p.dim / 2) * f4, "rope", "inv_freq");
    launch_rope(p, ctx_->stream);
  }
  void silu_mul(const ops::SiluMulParams& p) override {
    if (p.M <= 0 || p.n <= 0) return;
    use();
    check_rows(p.out, p.M, p.ldo, p.n, "silu_mul", "out");
    launch_silu_mul(p, ctx_->stream);
  }
  void embed(const ops::EmbedParams& p) override {
    if (p.M <= 0) return;
    use();
    mem_->check_weight(p.table, "embed");
    mem_->check_device(p.ids, size_t(p.M) * 4, "embed", "ids");
    check_rows(p.out, p.M, p.ldo, p.table.cols, "embed", "out");
    launch_embed(p, ctx_->stream);
  }
  void add(const ops::AddParams& p) override {
    if (p.M <= 0 || p.n <= 0) return;
    use();
    check_rows(p.y, p.M, p.ldy, p.n, "add", "y");
    launch_add(p, ctx_->stream);
  }
  void copy(const ops::CopyParams& p) override {
    if (p.M <= 0 || p.n <= 0) return;
    use();
    check_rows(p.src, p.M, p.lds, p.n, "copy", "src");
    check_rows(p.dst, p.M, p.ldd, p.n, "copy", "dst");
    launch_copy(p, ctx_->stream);
  }
  void kv_write(const ops::KvWriteParams& p) override {
    if (p.n <= 0) return;
    use();
    check_kv(p.kv, p.p0 + p.n, "kv_write");
    check_rows(p.x, p.n, p.ldx, p.kv.width, "kv_write", "x");
    launch_kv_write(p, ctx_->stream);
  }
  void kv_read(const ops::KvReadParams& p) override {
    if (p.n <= 0) return;
    use();
    check_kv(p.kv, p.p0 + p.n, "kv_read");
    check_rows(p.out, p.n, p.ldo, p.kv.width, "kv_read", "out");
    launch_kv_read(p, ctx_->stream);
  }
  void mla_prefill(const ops::MlaPrefillParams& p) override {
    if (p.T <= 0 || p.H <= 0) return;
    use();
    check_rows(p.out, p.T, p.ldo, p.H * p.dv, "mla_prefill", "out");
    DS_CHECK(!p.sel, "cuda mla_prefill: attention over selected positions (DeepSeek-V3.2) is not implemented yet");
    launch_mla_prefill(p, ctx_->stream);
  }
  void mla_decode(const ops::MlaDecodeParams& p) override {
    if (p.T <= 0 || p.H <= 0) return;
    use();
    check_rows(p.out, p.T, p.ldo, p.H * p.rank, "mla_decode", "out");
    DS_CHECK(p.kv.width == p.rank + p.rope, "cuda mla_decode: cache rows of ", p.kv.width, " values, expected rank ",
             p.rank, " + rope ", p.rope);
    DS_CHECK(!p.sel, "cuda mla_decode: attention over selected positions (DeepSeek-V3.2) is not implemented yet");
    check_kv(p.kv, p.S, "mla_decode");
    launch_mla_decode(p, ctx_->stream);
  }
  void gqa_attention(const ops::GqaAttentionParams& p) override {
    if (p.T <= 0 || p.H <= 0) return;
    use();
    DS_CHECK(p.Hkv > 0 && p.H % p.Hkv == 0 && p.hd > 0, "cuda gqa_attention: H ", p.H, " is not a multiple of Hkv ",
             p.Hkv, " (head dim ", p.hd, ")");
    check_rows(p.q, p.T, p.ldq, p.H * p.hd, "gqa_attention", "q");
    check_rows(p.out, p.T, p.ldo, p.H * p.hd, "gqa_attention", "out");
    DS_CHECK(p.kv.width == 2 * p.Hkv * p.hd, "cuda gqa_attention: cache rows of ", p.kv.width, " values, expected 2 x ",
             p.Hkv, " x ", p.hd);
    check_kv(p.kv, p.S, "gqa_attention");
    launch_gqa_attention(p, ctx_->stream);
  }
  void route(const ops::RouteParams& p) override {
    if (p.T <= 0) return;
    use();
    DS_CHECK(p.k >= 1 && p.k <= p.E && p.n_group >= 1 && p.E % p.n_group == 0 && p.topk_group >= 1 &&
                 p.topk_group <= p.n_group,
             "cuda route: inconsistent E ", p.E, ", k ", p.k, ", n_group ", p.n_group, ", topk_group ", p.topk_group);
    check_rows(p.logits, p.T, p.E, p.E, "route", "logits");
    check_rows(p.ids, p.T, p.k, p.k, "route", "ids");
    check_rows(p.weights, p.T, p.k, p.k, "route", "weights");
    if (p.bias) mem_->check_device(p.bias, size_t(p.E) * f4, "route", "bias");
    launch_route(p, ctx_->stream);
  }
  void moe(const ops::MoeParams& p) override {
    if (p.T <= 0 || p.k <= 0) return;
    use();
    check_rows(p.x, p.T, p.ldx, p.D, "moe", "x");
    check_rows(p.y, p.T, p.ldy, p.D, "moe", "y");
    check_rows(p.ids, p.T, p.k, p.k, "moe", "ids");
    launch_moe(p, expert_table(p), *mem_, ctx_->stream);
  }

 private:
  void use() const { DS_CU(cudaSetDevice(ctx_->device)); }

  // [M rows of n elements, row stride ld] must lie in device memory this backend allocated.
  template <typename T>
  void check_rows(const T* p, int64_t M, int64_t ld, int64_t n, const char* op, const char* what) const {
    mem_->check_device(p, size_t((M - 1) * ld + n) * sizeof(T), op, what);
  }

  // Cache rows [0, rows) (base/kv_rows.h): a known format, row stride and, paged, the block table in device memory;
  // contiguous rows in device memory.
  void check_kv(const ops::KvRows& k, int64_t rows, const char* op) const {
    DS_CHECK(is_kv_dtype(k.dtype) && k.row_bytes >= kv_row_bytes(k.dtype, k.width) && k.row_bytes % 4 == 0,
             "cuda ", op, ": bad cache rows (", dtype_name(k.dtype), ", ", k.width, " values, ", k.row_bytes,
             " bytes apart)");
    if (rows <= 0) return;
    if (k.block_table) {
      DS_CHECK(k.block_size > 0, "cuda ", op, ": paged cache with block_size ", k.block_size);
      mem_->check_device(k.block_table, size_t((rows + k.block_size - 1) / k.block_size) * 4, op, "block table");
    } else {
      mem_->check_device(k.base, size_t((rows - 1) * k.row_bytes + kv_row_bytes(k.dtype, k.width)), op, "kv");
    }
  }

  // The experts array lives on the host (one ExpertWeights per expert); kernels need it on the device. A layer's
  // table is uploaded once and reused while its contents stay the same (checked on the host, bytewise).
  // The host copy is pinned so the upload is truly asynchronous (no host wait inside moe, graph-capturable);
  // it stays unchanged while any upload from it may be in flight.
  struct Table {
    int64_t n = 0;
    ops::ExpertWeights* pinned = nullptr;  // [n] host (pinned)
    ops::ExpertWeights* dev = nullptr;     // [n] device
  };
  const ops::ExpertWeights* expert_table(const ops::MoeParams& p) {
    const size_t bytes = size_t(p.E) * sizeof(ops::ExpertWeights);
    auto it = tables_.find(p.experts);
    if (it != tables_.end() && it->second.n == p.E && std::memcmp(it->second.pinned, p.experts, bytes) == 0)
      return it->second.dev;
    DType dt = DType::F32;
    bool first = true;
    for (int64_t e = 0; e < p.E; ++e) {
      const ops::ExpertWeights& x = p.experts[e];
      if (!x.gate.data) continue;  // held by another process
      if (first) dt = x.gate.dtype, first = false;
      mem_->check_weight(x.gate, "moe");
      mem_->check_weight(x.up, "moe");
      mem_->check_weight(x.down, "moe");
      DS_CHECK(x.gate.dtype == dt && x.up.dtype == dt && x.down.dtype == dt,
               "cuda moe: all experts must share one weight dtype (expert ", e, ")");
      DS_CHECK(x.gate.rows == p.inter && x.gate.cols == p.D && x.up.rows == p.inter && x.up.cols == p.D &&
                   x.down.rows == p.D && x.down.cols == p.inter,
               "cuda moe: expert ", e, " has the wrong shape for D ", p.D, ", inter ", p.inter);
    }
    Table t;
    t.n = p.E;
    DS_CU(cudaMallocHost(reinterpret_cast<void**>(&t.pinned), bytes));
    std::memcpy(t.pinned, p.experts, bytes);
    DS_CU(cudaMalloc(reinterpret_cast<void**>(&t.dev), bytes));
    DS_CU(cudaMemcpyAsync(t.dev, t.pinned, bytes, cudaMemcpyHostToDevice, ctx_->stream));
    if (it != tables_.end()) {
      retired_tables_.push_back(it->second);  // queued kernels may still read the old table
      it->second = t;
      return t.dev;
    }
    return tables_.emplace(p.experts, t).first->second.dev;
  }

  std::shared_ptr<StreamContext> ctx_;
  std::unique_ptr<DeviceMemory> mem_;
  std::map<const ops::ExpertWeights*, Table> tables_;
  std::vector<Table> retired_tables_;
};

}  // namespace

std::unique_ptr<ops::Backend> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device); }

}  // namespace ds::cuda

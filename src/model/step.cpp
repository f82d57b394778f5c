// SPDX-License-Identifier: MIT
// A step sent between processes: how the ranks of a served model stay in lock step (docs/SCALING.md). Rank 0 owns
// the scheduler, the HTTP server and the pool's block tables; every forward and forward_mtp it runs is first
// broadcast as bytes, and every other rank runs the same computation (its shard of it) on a mirror of the pool:
//
//   step := kind (0 stop, 1 forward, 2 MTP) | journal ops + bytes (block copies / writes since the last step) |
//           chunks (first position, n, flags, capacity, block table) | tokens | MTP input rows (kind 2)
//
// Two broadcasts per step: its size, then its bytes.
#include <cstring>

#include "base/error.h"
#include "model/model.h"
#include "model/parallel.h"

namespace ds::model {

namespace {
struct Writer {
  std::vector<uint8_t> b;
  template <class T> void put(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
  }
  void bytes(const void* p, size_t n) {
    put(uint64_t(n));
    b.insert(b.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
  }
};
struct Reader {
  const std::vector<uint8_t>& b;
  size_t at = 0;
  template <class T> T get() {
    DS_CHECK(at + sizeof(T) <= b.size(), "step message truncated at byte ", at);
    T v;
    std::memcpy(&v, b.data() + at, sizeof v);
    at += sizeof v;
    return v;
  }
  // An array of T (copied: the message's bytes are not aligned for T).
  template <class T> std::vector<T> array() {
    size_t n = 0;
    const uint8_t* p = bytes(&n);
    DS_CHECK(n % sizeof(T) == 0, "step message: array of ", n, " bytes");
    std::vector<T> v(n / sizeof(T));
    if (n) std::memcpy(v.data(), p, n);
    return v;
  }
  const uint8_t* bytes(size_t* n) {
    *n = size_t(get<uint64_t>());
    DS_CHECK(at + *n <= b.size(), "step message truncated at byte ", at);
    const uint8_t* p = b.data() + at;
    at += *n;
    return p;
  }
};
enum : uint8_t { kStop = 0, kForward = 1, kMtp = 2 };

void send(dist::Comm& comm, std::vector<uint8_t>& msg) {
  uint64_t n = msg.size();
  comm.broadcast(&n, sizeof n, 0);
  comm.broadcast(msg.data(), msg.size(), 0);
}
}  // namespace

void Model::lead(KvPool& pool) {
  DS_CHECK(par_ && par_->rank == 0, "lead: only rank 0 of a model split across processes leads");
  int64_t geo[2] = {pool.n_blocks(), pool.block_size()};
  par_->comm->broadcast(geo, sizeof geo, 0);
  pool.set_journaling(true);
  lead_ = &pool;
}

void Model::end_lead() {
  if (!lead_) return;
  Writer w;
  w.put(uint8_t(kStop));
  send(*par_->comm, w.b);
  lead_->set_journaling(false);
  lead_ = nullptr;
}

void Model::send_step(bool mtp, const Batch& batch, const std::vector<int64_t>& pos0, const float* hidden) {
  Writer w;
  w.put(uint8_t(mtp ? kMtp : kForward));
  const KvPool::Journal j = lead_->take_journal();
  w.put(uint64_t(j.ops.size()));
  for (const KvPool::JournalOp& op : j.ops) w.put(op);
  w.bytes(j.bytes.data(), j.bytes.size());
  w.put(uint64_t(batch.seqs.size()));
  for (size_t i = 0; i < batch.seqs.size(); ++i) {
    const SeqChunk& c = batch.seqs[i];
    DS_CHECK(&c.cache->pool() == lead_, "across processes every sequence of a step must be on the served pool");
    w.put(pos0[i]);
    w.put(c.n);
    w.put(uint8_t(c.all_logits | (c.want_hidden << 1)));
    w.put(c.cache->capacity());
    w.bytes(c.cache->blocks().data(), c.cache->blocks().size() * sizeof(int32_t));
  }
  w.bytes(batch.tokens.data(), batch.tokens.size() * sizeof(int32_t));
  if (mtp) w.bytes(hidden, batch.tokens.size() * size_t(cfg_.hidden_size) * sizeof(float));
  send(*par_->comm, w.b);
}

void Model::follow() {
  DS_CHECK(par_ && par_->rank != 0, "follow: only ranks other than 0 of a model split across processes follow");
  dist::Comm& comm = *par_->comm;
  int64_t geo[2] = {0, 0};
  comm.broadcast(geo, sizeof geo, 0);
  std::shared_ptr<KvPool> pool = new_pool(geo[0], geo[1]);
  std::vector<uint8_t> msg;
  ForwardOutput out;
  for (;;) {
    uint64_t n = 0;
    comm.broadcast(&n, sizeof n, 0);
    msg.resize(size_t(n));
    comm.broadcast(msg.data(), msg.size(), 0);
    Reader r{msg};
    const uint8_t kind = r.get<uint8_t>();
    if (kind == kStop) return;
    DS_CHECK(kind == kForward || kind == kMtp, "step message of unknown kind ", int(kind));
    KvPool::Journal j;
    j.ops.resize(size_t(r.get<uint64_t>()));
    for (KvPool::JournalOp& op : j.ops) op = r.get<KvPool::JournalOp>();
    size_t nb = 0;
    const uint8_t* jb = r.bytes(&nb);
    j.bytes.assign(jb, jb + nb);
    pool->replay(j);
    Batch batch;
    std::vector<int64_t> pos0;
    std::vector<std::unique_ptr<KvCache>> caches;
    const uint64_t chunks = r.get<uint64_t>();
    for (uint64_t i = 0; i < chunks; ++i) {
      SeqChunk c;
      pos0.push_back(r.get<int64_t>());
      c.n = r.get<int64_t>();
      const uint8_t flags = r.get<uint8_t>();
      c.all_logits = flags & 1;
      c.want_hidden = (flags >> 1) & 1;
      const int64_t capacity = r.get<int64_t>();
      std::vector<int32_t> table = r.array<int32_t>();
      for (int32_t b : table) DS_CHECK(b >= 0 && b < pool->n_blocks(), "step message: block ", b, " out of range");
      caches.push_back(KvCache::mirror(pool, capacity, std::move(table), pos0.back(), pos0.back()));
      c.cache = caches.back().get();
      batch.seqs.push_back(c);
    }
    batch.tokens = r.array<int32_t>();
    if (kind == kForward) {
      run_forward(batch, pos0, &out);
    } else {
      const std::vector<float> hidden = r.array<float>();
      DS_CHECK(hidden.size() == batch.tokens.size() * size_t(cfg_.hidden_size), "step message: MTP rows");
      run_mtp(batch, pos0, hidden.data(), &out);
    }
  }
}

}  // namespace ds::model

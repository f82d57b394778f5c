// SPDX-License-Identifier: MIT
// The paged latent KV cache: pool bookkeeping (refcounts, publish/lookup chains, LRU eviction, generations), copy on
// write, and the model computing through block tables: any block size, scattered blocks and shared prefixes give
// bitwise the logits of a private contiguous-looking cache.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "base/error.h"
#include "base/kv_rows.h"
#include "expect_error.h"
#include "model/kv_cache.h"
#include "ops/ref/ref_backend.h"
#include "runtime/engine.h"

namespace ds::test {
namespace {

using model::KvCache;
using model::KvPool;

TEST(KvPool, AllocateReleaseAndExhaustion) {
  auto be = ref::make_ref_backend();
  KvPool pool(*be, 3, 4, 2, 5);
  EXPECT_EQ(pool.available(), 3);
  const int32_t a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
  EXPECT_GE(a, 0); EXPECT_GE(b, 0); EXPECT_GE(c, 0);
  EXPECT_EQ(pool.allocate(), -1);
  EXPECT_EQ(pool.n_used(), 3);
  pool.retain(b);
  pool.release(b);
  EXPECT_EQ(pool.n_used(), 3);
  pool.release(b);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_EQ(pool.allocate(), b);
}

TEST(KvPool, PublishLookupChainAndLru) {
  auto be = ref::make_ref_backend();
  KvPool pool(*be, 4, 2, 1, 3);
  const int32_t t0[2] = {1, 2}, t1[2] = {3, 4}, other[2] = {9, 9};
  const int32_t a = pool.allocate(), b = pool.allocate();
  ASSERT_TRUE(pool.publish(a, -1, t0));
  ASSERT_TRUE(pool.publish(b, a, t1));
  EXPECT_FALSE(pool.publish(pool.allocate(), -1, t0)) << "same content twice";
  EXPECT_EQ(pool.lookup(-1, other), -1);
  EXPECT_EQ(pool.lookup(a, t0), -1) << "wrong parent";
  EXPECT_EQ(pool.lookup(-1, t0), a);
  EXPECT_EQ(pool.refs(a), 2);
  EXPECT_EQ(pool.lookup(a, t1), b);
  for (int i = 0; i < 2; ++i) pool.release(a), pool.release(b);
  EXPECT_EQ(pool.n_cached(), 2);  // unreferenced, still findable
  EXPECT_EQ(pool.lookup(-1, t0), a);
  pool.release(a);                // a is now the most recently released: b is evicted first
  EXPECT_EQ(pool.n_free(), 1);
  const int32_t f = pool.allocate();  // the free one
  EXPECT_NE(f, a); EXPECT_NE(f, b);
  EXPECT_EQ(pool.allocate(), b);  // LRU: b
  EXPECT_EQ(pool.evictions(), 1u);
  EXPECT_EQ(pool.lookup(-1, t0), a);
  pool.release(a);
  EXPECT_EQ(pool.allocate(), a);  // a evicted too; its content is forgotten
  EXPECT_EQ(pool.lookup(-1, t0), -1);
}

TEST(KvPool, EvictedParentMakesChildUnreachable) {
  auto be = ref::make_ref_backend();
  KvPool pool(*be, 2, 1, 1, 1);
  const int32_t x[1] = {5}, y[1] = {6}, z[1] = {7};
  const int32_t a = pool.allocate(), b = pool.allocate();
  pool.publish(a, -1, x);
  pool.publish(b, a, y);
  pool.release(a);
  pool.release(b);  // LRU: a, b
  const int32_t a2 = pool.allocate();  // evicts a
  ASSERT_EQ(a2, a);
  pool.publish(a2, -1, z);  // same block id, other content
  EXPECT_EQ(pool.lookup(-1, z), a2);
  EXPECT_EQ(pool.lookup(a2, y), -1) << "b was computed after x, not after z";
}

// Row t of layer l of an f32 pool as floats.
float* f32_row(KvCache& c, int64_t l, int64_t t) { return reinterpret_cast<float*>(c.row(l, t)); }

TEST(KvCache, CopyOnWriteOfSharedAndPublishedBlocks) {
  auto be = ref::make_ref_backend();
  auto pool = std::make_shared<KvPool>(*be, 8, 2, 2, 3);  // 2 layers (say main + MTP), width 3
  KvCache a(pool, 8);
  a.prepare_write(0, 4, false);
  for (int64_t t = 0; t < 4; ++t)
    for (int64_t l = 0; l < 2; ++l) std::fill_n(f32_row(a, l, t), 3, float(10 * l + t));
  a.length = 4;
  const int32_t toks[4] = {1, 2, 3, 4};
  ASSERT_TRUE(pool->publish(a.blocks()[0], -1, toks));
  ASSERT_TRUE(pool->publish(a.blocks()[1], a.blocks()[0], toks + 2));
  std::vector<int32_t> hit = {pool->lookup(-1, toks)};
  hit.push_back(pool->lookup(hit[0], toks + 2));
  ASSERT_EQ(hit, a.blocks());
  KvCache b(pool, 8);
  b.adopt(hit);
  EXPECT_EQ(b.length, 4);
  EXPECT_EQ(b.row(0, 3), a.row(0, 3)) << "shared, not copied";
  // MTP rows of a shared block: copied before the write, the owner's rows untouched.
  b.prepare_write(1, 1, true);
  EXPECT_NE(b.blocks()[0], a.blocks()[0]);
  EXPECT_EQ(b.blocks()[1], a.blocks()[1]);
  EXPECT_EQ(f32_row(b, 1, 0)[0], 10.0f);
  f32_row(b, 1, 1)[0] = -1;
  EXPECT_EQ(f32_row(a, 1, 1)[0], 11.0f);
  // Main rows of a published block, even when no one else holds it: copied (its key promises its content).
  b.truncate(3);
  b.prepare_write(3, 1, false);
  EXPECT_NE(b.blocks()[1], a.blocks()[1]);
  EXPECT_EQ(f32_row(b, 0, 2)[0], 2.0f);
  // Pool exhaustion is an error naming the flag; clear() gives everything back.
  KvCache c(pool, 64);
  EXPECT_TRUE(throws_with([&] { c.prepare_write(0, 64, false); }, {"--kv-cache-tokens"}));
  EXPECT_FALSE(c.reserve(64));
  c.clear();
  b.clear();
  a.clear();
  EXPECT_EQ(pool->n_used(), 0);
  EXPECT_EQ(pool->n_cached(), 2);
}

// Model level: prefill in two chunks + decode steps + MTP, through caches of several block sizes whose blocks are
// scattered in a shared pool, and through a cache that adopts another sequence's published prefix.
// The cache's format is the parameter: f32 (with --precision f32), bf16 and fp8 rows (with fast).
class PagedModel : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    rt::EngineOptions o;
    o.threads = 2;
    o.precision = GetParam() == DType::F32 ? ops::Precision::F32 : ops::Precision::Fast;
    o.kv_dtype = GetParam();
    e_ = rt::Engine::load(std::string(DS_SOURCE_DIR) + "/tests/fixtures/models/tiny-v3", o);
    for (int i = 0; i < 21; ++i) prompt_.push_back(int32_t((i * 37 + 11) % e_->config().vocab_size));
  }
  // Logits of: prompt rows [from, 21) in chunks ending at 7 and 21, 4 decode steps, then MTP over 3 rows.
  std::vector<float> run(KvCache& c, int64_t from) {
    std::vector<float> all;
    model::ForwardOutput out;
    auto fwd = [&](int64_t a, int64_t b) {
      model::Batch bt;
      bt.tokens.assign(prompt_.begin() + a, prompt_.begin() + b);
      bt.seqs.push_back({&c, b - a, true, false});
      e_->model().forward(bt, &out);
      all.insert(all.end(), out.logits.begin(), out.logits.end());
    };
    if (from < 7) fwd(from, 7);
    fwd(std::max<int64_t>(from, 7), 21);
    for (int s = 0; s < 4; ++s) {
      model::Batch bt;
      bt.tokens = {int32_t(100 + s)};
      bt.seqs.push_back({&c, 1, false, true});
      e_->model().forward(bt, &out);
      all.insert(all.end(), out.logits.begin(), out.logits.end());
      if (s == 3) {
        std::vector<float> mtp;
        c.mtp_length = c.length - 3;
        std::vector<float> h(out.hidden);
        for (int k = 0; k < 2; ++k) h.insert(h.end(), out.hidden.begin(), out.hidden.end());
        e_->model().forward_mtp(&c, {1, 2, 3}, h.data(), 3, &mtp);
        all.insert(all.end(), mtp.begin(), mtp.end());
      }
    }
    return all;
  }
  std::unique_ptr<rt::Engine> e_;
  std::vector<int32_t> prompt_;
};

TEST_P(PagedModel, BlockSizeAndLayoutDoNotChangeLogits) {
  auto ref_cache = e_->model().new_cache(64);
  const std::vector<float> want = run(*ref_cache, 0);
  for (int64_t bs : {1, 3, 5, 16, 64}) {
    auto pool = e_->model().new_pool(64 / bs + 8, bs);
    KvCache scatter(pool, 3 * bs);
    scatter.prepare_write(0, 3 * bs, false);  // take some blocks first so the sequence's blocks are not in order
    KvCache c(pool, 64);
    scatter.clear();
    const std::vector<float> got = run(c, 0);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4)) << "block size " << bs;
  }
}

TEST_P(PagedModel, AdoptedPrefixGivesTheSameLogits) {
  auto pool = e_->model().new_pool(32, 4);
  KvCache a(pool, 64);
  const std::vector<float> want = run(a, 0);
  // Publish a's first 2 blocks (8 prompt rows, computed by the multi-head form), then start b on them.
  for (int64_t b = 0; b < 2; ++b)
    ASSERT_TRUE(pool->publish(a.blocks()[size_t(b)], b ? a.blocks()[size_t(b - 1)] : -1, prompt_.data() + 4 * b));
  std::vector<int32_t> hit;
  for (int64_t b = 0; b < 2; ++b) hit.push_back(pool->lookup(hit.empty() ? -1 : hit.back(), prompt_.data() + 4 * b));
  KvCache b(pool, 64);
  b.adopt(hit);
  const std::vector<float> got = run(b, 8);
  // b computed rows 8..20 in one chunk where a computed 7..20 (both multi-head: Model::attention_form): the last 13
  // prompt rows' logits onward must match.
  const int64_t V = e_->config().vocab_size;
  ASSERT_EQ(got.size() + 8 * size_t(V), want.size());
  EXPECT_EQ(0, std::memcmp(got.data(), want.data() + 8 * V, got.size() * 4));
}

// Copy on write and swapping copy a block's bytes: every format's rows (and fp8 scales) come out unchanged.
TEST_P(PagedModel, CopiedBlockHoldsTheSameRows) {
  auto pool = e_->model().new_pool(4, 4);
  EXPECT_EQ(pool->dtype(), GetParam());
  EXPECT_EQ(pool->row_bytes(), kv_row_bytes(GetParam(), e_->model().arch().kv_width));
  EXPECT_EQ(pool->bytes_per_token(), pool->row_bytes() * e_->model().n_cache_layers());
  auto big = e_->model().new_pool(16, 4);
  KvCache a(big, 64);
  run(a, 0);
  const int32_t src = a.blocks()[1], dst = big->allocate();
  ASSERT_GE(dst, 0);
  big->copy_block(dst, src);
  std::vector<uint8_t> x(size_t(big->block_bytes())), y(x.size());
  big->backend().download(x.data(), big->base() + src * big->block_bytes(), x.size());
  big->backend().download(y.data(), big->base() + dst * big->block_bytes(), y.size());
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size()));
  big->release(dst);
}

INSTANTIATE_TEST_SUITE_P(KvDtypes, PagedModel, ::testing::Values(DType::F32, DType::BF16, DType::F8_E4M3),
                         [](const auto& info) { return std::string(kv_dtype_name(info.param)); });

}  // namespace
}  // namespace ds::test

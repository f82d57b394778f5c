// SPDX-License-Identifier: MIT
// The malformed-model-file corpus (docs/SECURITY.md, "Malformed model files"; reliability.md 1.6): every case is a
// named mutation of a small valid file built here (a safetensors image, a sharded checkpoint folder, config.json,
// tokenizer.json, a GGUF image, a tiny model folder) plus the pieces its error message must contain. Each case must
// fail with ds::Error naming the problem, never crash (this runs under ASan/UBSan too), and never make a single
// allocation above kAllocCap (checked by the operator new below). The unmutated files load, so each case fails
// for its own defect.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <new>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/gguf_image.h"
#include "io/io_test_util.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

// Largest single allocation while a case runs: a 160-byte file must not make the loader allocate a gigabyte
// (reliability.md G8). Without ASan a replaced operator new records the largest request while g_watch is set; ASan
// keeps its own allocator (replacing it there mixes the two), so under ASan the same cap is ASan's
// max_allocation_size_mb: a larger request fails with std::bad_alloc, which the test reports as a non-ds::Error.
#if defined(__SANITIZE_ADDRESS__)
#define DS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DS_TEST_ASAN 1
#endif
#endif
namespace {
std::atomic<bool> g_watch{false};
std::atomic<size_t> g_largest{0};
constexpr size_t kAllocCap = size_t(64) << 20;
}  // namespace
#ifdef DS_TEST_ASAN
extern "C" const char* __asan_default_options() { return "max_allocation_size_mb=64:allocator_may_return_null=1"; }
#else
namespace {
void* counted_alloc(size_t n) {
  if (g_watch.load(std::memory_order_relaxed)) {
    size_t cur = g_largest.load(std::memory_order_relaxed);
    while (n > cur && !g_largest.compare_exchange_weak(cur, n)) {
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace
void* operator new(size_t n) { return counted_alloc(n); }
void* operator new[](size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

namespace ds::io::test {
namespace {

namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;

struct Case {
  std::string group;                 // S1.., G1.., M1.., index, config, tokenizer
  std::string name;
  std::function<void()> load;        // builds the mutated file(s) and loads them; must throw ds::Error
  std::vector<std::string> expect;   // pieces of the message
};

// ---------------------------------------------------------------------------------------------------------------
// Safetensors: three tensors of three element sizes, aligned, with metadata.
const char* const kStHeader =
    R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("h":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]},"m":{"dtype":"U8","shape":[8],"data_offsets":[24,32]}})";

// Parses an image the way SafetensorsFile::open does after mapping it.
void st_load(const std::vector<uint8_t>& img) { SafetensorsFile::parse(img.data(), img.size(), "m.safetensors"); }
// The valid header with `edit` applied (as JSON), padded, with `data` bytes of data.
std::function<void()> st_edit(std::function<void(OJson&)> edit, size_t data = 32) {
  return [=] {
    OJson h = OJson::parse(kStHeader);
    edit(h);
    st_load(st_image(h.dump(), data));
  };
}
// A header given as text (padded), with `data` bytes of data.
std::function<void()> st_text(std::string header, size_t data = 32) {
  return [=] { st_load(st_image(header, data)); };
}
// The valid image with its bytes patched.
std::function<void()> st_patch(std::function<void(std::vector<uint8_t>&)> patch) {
  return [=] {
    auto img = st_image(kStHeader, 32);
    patch(img);
    st_load(img);
  };
}
void set_len(std::vector<uint8_t>& b, uint64_t n) {
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(n >> (8 * i));
}
OJson tensor(const std::string& dtype, OJson shape, OJson offsets) {
  return OJson{{"dtype", dtype}, {"shape", shape}, {"data_offsets", offsets}};
}

std::vector<Case> safetensors_cases() {
  std::vector<Case> c = {
      // S1: the length prefix.
      {"S1", "empty file", [] { st_load({}); }, {"0 bytes", "too small"}},
      {"S1", "7-byte file", [] { st_load(std::vector<uint8_t>(7, 0)); }, {"7 bytes", "too small"}},
      {"S1", "header length 0", st_patch([](auto& b) { set_len(b, 0); }), {"header length is 0"}},
      {"S1", "header length over 100 MB", st_patch([](auto& b) { set_len(b, 100'000'001); }), {"100000000-byte limit"}},
      {"S1", "header length 2^64-1 (N + 8 overflows)", st_patch([](auto& b) { set_len(b, ~uint64_t(0)); }),
       {"limit"}},
      {"S1", "header length 2^64-8", st_patch([](auto& b) { set_len(b, ~uint64_t(0) - 7); }), {"limit"}},
      {"S1", "header length past the end", st_patch([](auto& b) { set_len(b, b.size()); }), {"runs past the end"}},
      {"S1", "header length one past the end", st_patch([](auto& b) { set_len(b, b.size() - 7); }),
       {"runs past the end"}},
      // S2: the header text.
      {"S2", "invalid UTF-8 byte", st_text("{\"a\xff\":1}", 0), {"UTF-8"}},
      {"S2", "overlong UTF-8", st_text("{\"\xc0\xaf\":1}", 0), {"UTF-8"}},
      {"S2", "UTF-8 surrogate", st_text("{\"\xed\xa0\x80\":1}", 0), {"UTF-8"}},
      {"S2", "truncated UTF-8 sequence", st_text("{\"\xe4\xbd\":1}", 0), {"UTF-8"}},
      {"S2", "byte-order mark", st_text("\xEF\xBB\xBF{}", 0), {"byte-order mark"}},
      {"S2", "not JSON", st_text("hello", 0), {"invalid JSON"}},
      {"S2", "unclosed object", st_text("{\"w\":{", 0), {"invalid JSON"}},
      {"S2", "trailing comma", st_text("{\"x\":1,}", 0), {"invalid JSON"}},
      {"S2", "trailing non-whitespace", st_text("{} x", 0), {"invalid JSON"}},
      {"S2", "two objects", st_text("{}{}", 0), {"invalid JSON"}},
      {"S2", "NUL byte inside", st_text(std::string("{}\0{\"x\":1}", 10), 0), {"NUL byte"}},
      {"S2", "nesting 65 deep", st_text("{\"__metadata__\":" + std::string(64, '[') + std::string(64, ']') + "}", 0),
       {"nesting"}},
      {"S2", "top level an array", st_text("[]", 0), {"must be a JSON object", "array"}},
      {"S2", "top level a number", st_text("42", 0), {"must be a JSON object"}},
      {"S2", "top level null", st_text("null", 0), {"must be a JSON object"}},
      // S3: entries.
      {"S3", "missing dtype", st_edit([](OJson& h) { h["w"].erase("dtype"); }), {"tensor 'w'", "missing field 'dtype'"}},
      {"S3", "missing shape", st_edit([](OJson& h) { h["w"].erase("shape"); }), {"tensor 'w'", "missing field 'shape'"}},
      {"S3", "missing data_offsets", st_edit([](OJson& h) { h["w"].erase("data_offsets"); }),
       {"tensor 'w'", "missing field 'data_offsets'"}},
      {"S3", "unknown field", st_edit([](OJson& h) { h["w"]["offset"] = 0; }), {"unknown field 'offset'"}},
      {"S3", "unknown dtype", st_edit([](OJson& h) { h["w"]["dtype"] = "F33"; }), {"unknown or unsupported dtype 'F33'"}},
      {"S3", "lower-case dtype", st_edit([](OJson& h) { h["w"]["dtype"] = "f32"; }), {"dtype 'f32'"}},
      {"S3", "ggml block type as dtype", st_edit([](OJson& h) { h["w"]["dtype"] = "Q4_K"; }), {"dtype 'Q4_K'"}},
      {"S3", "dtype a number", st_edit([](OJson& h) { h["w"]["dtype"] = 4; }), {"dtype must be a string"}},
      {"S3", "shape not an array", st_edit([](OJson& h) { h["w"]["shape"] = 4; }), {"shape must be an array"}},
      {"S3", "shape dim negative", st_edit([](OJson& h) { h["w"]["shape"] = {-2, -2}; }),
       {"shape[0] must be a non-negative integer"}},
      {"S3", "shape dim a float", st_edit([](OJson& h) { h["w"]["shape"] = {2.0, 2}; }), {"shape[0]"}},
      {"S3", "shape dim a string", st_edit([](OJson& h) { h["w"]["shape"] = {"2", 2}; }), {"shape[0]"}},
      {"S3", "shape dim past 2^64", st_text(R"({"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}})", 4),
       {"shape[0]"}},
      {"S3", "shape dim past 2^63", st_edit([](OJson& h) { h["w"]["shape"] = {uint64_t(1) << 63, 2}; }),
       {"shape[0]", "2^63-1"}},
      {"S3", "data_offsets of 1 element", st_edit([](OJson& h) { h["w"]["data_offsets"] = {0}; }),
       {"data_offsets must be [begin, end]"}},
      {"S3", "data_offsets of 3 elements", st_edit([](OJson& h) { h["w"]["data_offsets"] = {0, 8, 16}; }),
       {"data_offsets must be [begin, end]"}},
      {"S3", "data_offsets an object", st_edit([](OJson& h) { h["w"]["data_offsets"] = {{"b", 0}}; }),
       {"data_offsets must be [begin, end]"}},
      {"S3", "negative offset", st_edit([](OJson& h) { h["w"]["data_offsets"] = {-16, 16}; }),
       {"data_offsets[0] must be a non-negative integer"}},
      {"S3", "float offset", st_edit([](OJson& h) { h["w"]["data_offsets"] = {0, 16.5}; }), {"data_offsets[1]"}},
      {"S3", "entry a string", st_edit([](OJson& h) { h["w"] = "F32"; }), {"tensor 'w'", "entry must be an object"}},
      {"S3", "entry null", st_edit([](OJson& h) { h["w"] = nullptr; }), {"tensor 'w'", "entry must be an object"}},
      // S4: ranges.
      {"S4", "end before begin", st_edit([](OJson& h) { h["w"]["data_offsets"] = {16, 0}; }), {"end is before begin"}},
      {"S4", "first range not at 0", st_edit([](OJson& h) {
         h["w"]["data_offsets"] = {8, 24};
         h["h"]["data_offsets"] = {24, 32};
         h["m"]["data_offsets"] = {32, 40};
       }, 40), {"must start at byte 0"}},
      {"S4", "gap between tensors", st_edit([](OJson& h) {
         h["h"]["data_offsets"] = {18, 26};
         h["m"]["data_offsets"] = {26, 34};
       }, 34), {"tensor 'h'", "gap of 2 bytes"}},
      {"S4", "overlapping tensors", st_edit([](OJson& h) {
         h["h"]["data_offsets"] = {8, 16};
         h["m"]["data_offsets"] = {16, 24};
       }, 24), {"overlaps tensor 'w'"}},
      {"S4", "two tensors on one range", st_edit([](OJson& h) { h["m2"] = tensor("U8", {8}, {24, 32}); }),
       {"overlaps tensor"}},
      // S5: sizes.
      {"S5", "element count overflows", st_edit([](OJson& h) { h["w"]["shape"] = {uint64_t(1) << 32, uint64_t(1) << 32}; }),
       {"element count", "overflows"}},
      {"S5", "bit count overflows", st_edit([](OJson& h) { h["w"]["shape"] = {uint64_t(1) << 62}; }),
       {"overflows 64 bits"}},
      {"S5", "product wrapping to 0 with an empty range", st_edit([](OJson& h) {
         h["z"] = tensor("F32", {uint64_t(1) << 33, uint64_t(1) << 31}, {32, 32});
       }), {"tensor 'z'", "overflows"}},
      {"S5", "range shorter than the shape", st_edit([](OJson& h) { h["w"]["shape"] = {2, 3}; }),
       {"span 16 bytes", "needs 24"}},
      {"S5", "range longer than the shape", st_edit([](OJson& h) { h["w"]["shape"] = {2}; }), {"span 16 bytes", "needs 8"}},
      {"S5", "zero dim with a non-empty range", st_edit([](OJson& h) { h["w"]["shape"] = {0, 2}; }), {"needs 0"}},
      {"S5", "dtype changed, size not", st_edit([](OJson& h) { h["w"]["dtype"] = "F64"; }), {"needs 32"}},
      // S6: the end of the buffer.
      {"S6", "one trailing byte", [] { st_load(st_image(kStHeader, 33)); }, {"1 trailing bytes"}},
      {"S6", "kilobyte of trailing bytes", [] { st_load(st_image(kStHeader, 32 + 1024)); }, {"1024 trailing bytes"}},
      {"S6", "truncated by one byte", [] { st_load(st_image(kStHeader, 31)); }, {"truncated", "need 32", "has 31"}},
      {"S6", "no data at all", [] { st_load(st_image(kStHeader, 0)); }, {"truncated"}},
      {"S6", "no tensors but data", st_text("{}", 8), {"8 trailing bytes"}},
      // S7, S8.
      {"S7", "duplicate tensor name", st_text(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                              R"("w":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", 8),
       {"duplicate JSON key 'w'"}},
      {"S8", "__metadata__ a string", st_edit([](OJson& h) { h["__metadata__"] = "pt"; }), {"__metadata__", "string"}},
      {"S8", "__metadata__ an array", st_edit([](OJson& h) { h["__metadata__"] = OJson::array(); }),
       {"__metadata__", "array"}},
      {"S8", "__metadata__ null", st_edit([](OJson& h) { h["__metadata__"] = nullptr; }), {"__metadata__", "null"}},
      {"S8", "__metadata__ value a number", st_edit([](OJson& h) { h["__metadata__"]["v"] = 1; }),
       {"__metadata__ value for 'v' must be a string"}},
      {"S8", "__metadata__ value an object", st_edit([](OJson& h) { h["__metadata__"]["v"] = {{"a", "b"}}; }),
       {"__metadata__ value for 'v'"}},
      {"S8", "tensor named __metadata__", st_edit([](OJson& h) {
         h.erase("__metadata__");
         h["__metadata__"] = tensor("U8", {0}, {32, 32});
       }), {"__metadata__ value for", "must be a string"}},
      {"S8", "duplicate __metadata__ key", st_text(R"({"__metadata__":{"k":"1","k":"2"}})", 0),
       {"duplicate JSON key 'k'"}},
      // Alignment (docs/SECURITY.md): data must start at a multiple of the element size.
      {"align", "header padded to 7 bytes (F32 misaligned)", [] {
         std::string h = kStHeader;
         while ((h.size() + 8) % 8 != 7) h += ' ';
         st_load(st_raw(h.size(), h, 32));
       }, {"tensor 'w'", "not a multiple of its F32 element size 4", "safetensors library", "always aligned"}},
      {"align", "header padded to 2 bytes past 8 (F32 misaligned, BF16 aligned)", [] {
         std::string h = kStHeader;
         while ((h.size() + 8) % 8 != 2) h += ' ';
         st_load(st_raw(h.size(), h, 32));
       }, {"tensor 'w'", "F32 element size 4"}},
      {"align", "BF16 after an odd U8 tensor", st_text(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                                                      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[3,7]}})", 7),
       {"tensor 'b'", "file offset", "data_offsets begin 3", "BF16 element size 2"}},
      {"align", "F64 at a 4-byte boundary", st_text(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                                   R"("b":{"dtype":"F64","shape":[1],"data_offsets":[4,12]}})", 12),
       {"tensor 'b'", "F64 element size 8"}},
  };
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// A sharded checkpoint folder: two shards and their index.
struct Folder {
  OJson index = {{"metadata", {{"total_size", 48}}},
                 {"weight_map", {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00001-of-00002.safetensors"},
                                 {"c", "model-00002-of-00002.safetensors"}}}};
  std::map<std::string, std::vector<uint8_t>> files = {
      {"model-00001-of-00002.safetensors", st_f32_pairs({"a", "b"})},
      {"model-00002-of-00002.safetensors", st_f32_pairs({"c"})}};
  std::string index_text;  // when set, written instead of `index`
};

// Writes the folder (after `edit`, which may also make links or folders in it) and opens it.
std::function<void()> ck_case(std::function<void(Folder&, const std::string& dir)> edit) {
  return [=] {
    TempDir d;
    const std::string dir = d / "ckpt";
    fs::create_directories(dir);
    Folder f;
    edit(f, dir);
    for (const auto& [name, bytes] : f.files) write_file(dir + "/" + name, bytes);
    write_text(dir + "/model.safetensors.index.json", f.index_text.empty() ? f.index.dump() : f.index_text);
    Checkpoint::open(dir);
  };
}
auto map_a(const std::string& file) {
  return ck_case([=](Folder& f, const std::string&) { f.index["weight_map"]["a"] = file; });
}

std::vector<Case> index_cases() {
  return {
      {"S9", "shard name with ..", map_a("../model-00001-of-00002.safetensors"), {"tensor 'a'", "contains '..'"}},
      {"S9", "shard name .. alone", map_a(".."), {"contains '..'"}},
      {"S9", "absolute shard path", map_a("/etc/passwd"), {"contains '/'"}},
      {"S9", "shard in a subfolder", map_a("sub/model.safetensors"), {"contains '/'"}},
      {"S9", "backslash in shard name", map_a("sub\\x.safetensors"), {"contains '\\'"}},
      {"S9", "empty shard name", map_a(""), {"is empty"}},
      {"S9", "shard name '.'", map_a("."), {"is '.'"}},
      {"S9", "control character in shard name", map_a("a\nb.safetensors"), {"control character"}},
      {"S9", "symlink out of the folder", ck_case([](Folder& f, const std::string& dir) {
         write_file(dir + "/../outside.safetensors", st_f32_pairs({"a", "b"}));
         fs::create_symlink("../outside.safetensors", dir + "/link.safetensors");
         f.index["weight_map"]["a"] = "link.safetensors";
         f.index["weight_map"]["b"] = "link.safetensors";
         f.files.erase("model-00001-of-00002.safetensors");
       }), {"link.safetensors", "outside the checkpoint folder"}},
      {"S9", "shard is a folder", ck_case([](Folder& f, const std::string& dir) {
         fs::create_directories(dir + "/dir.safetensors");
         f.index["weight_map"]["c"] = "dir.safetensors";
       }), {"dir.safetensors", "not a regular file"}},
      {"S9", "shard missing", ck_case([](Folder& f, const std::string&) {
         f.files.erase("model-00002-of-00002.safetensors");
       }), {"model-00002-of-00002.safetensors", "missing"}},
      {"S9", "listed tensor missing from its shard", ck_case([](Folder& f, const std::string&) {
         f.index["weight_map"]["d"] = "model-00002-of-00002.safetensors";
       }), {"tensor 'd'", "missing from its shard"}},
      {"S9", "tensor in two shards", ck_case([](Folder& f, const std::string&) {
         f.files["model-00002-of-00002.safetensors"] = st_f32_pairs({"c", "a"});
       }), {"tensor 'a'", "appears in two shards"}},
      {"S9", "shard holds an unlisted tensor", ck_case([](Folder& f, const std::string&) {
         f.files["model-00002-of-00002.safetensors"] = st_f32_pairs({"c", "x"});
       }), {"tensor 'x'", "does not list"}},
      {"S9", "tensor mapped to the wrong shard", ck_case([](Folder& f, const std::string&) {
         f.index["weight_map"]["c"] = "model-00001-of-00002.safetensors";
         f.files["model-00001-of-00002.safetensors"] = st_f32_pairs({"a", "b"});
         f.files["model-00003.safetensors"] = st_f32_pairs({"c"});
         f.index["weight_map"]["b"] = "model-00002-of-00002.safetensors";
       }), {"tensor 'b'", "maps it to model-00002-of-00002.safetensors"}},
      {"S9", "invalid shard inside a valid index", ck_case([](Folder& f, const std::string&) {
         f.files["model-00002-of-00002.safetensors"] = st_raw(0, "", 0);
       }), {"model-00002-of-00002.safetensors", "header length is 0"}},
      {"index", "weight_map missing", ck_case([](Folder& f, const std::string&) { f.index.erase("weight_map"); }),
       {"missing 'weight_map'"}},
      {"index", "weight_map an array", ck_case([](Folder& f, const std::string&) { f.index["weight_map"] = {1}; }),
       {"'weight_map' must be an object"}},
      {"index", "weight_map empty", ck_case([](Folder& f, const std::string&) {
         f.index["weight_map"] = OJson::object();
       }), {"'weight_map' is empty"}},
      {"index", "shard name a number", ck_case([](Folder& f, const std::string&) { f.index["weight_map"]["a"] = 1; }),
       {"tensor 'a'", "must be a file name string"}},
      {"index", "index an array", ck_case([](Folder& f, const std::string&) { f.index_text = "[]"; }),
       {"must be a JSON object"}},
      {"index", "index not JSON", ck_case([](Folder& f, const std::string&) { f.index_text = "{weight_map:"; }),
       {"model.safetensors.index.json", "invalid JSON"}},
      {"index", "duplicate tensor key in the index", ck_case([](Folder& f, const std::string&) {
         f.index_text = R"({"weight_map":{"a":"model-00001-of-00002.safetensors","a":"model-00002-of-00002.safetensors"}})";
       }), {"duplicate JSON key 'a'"}},
      {"index", "folder with no model file", [] {
         TempDir d;
         Checkpoint::open(d.path());
       }, {"has neither model.safetensors nor model.safetensors.index.json"}},
      {"index", "folder missing", [] { Checkpoint::open("/nonexistent/ckpt"); }, {"/nonexistent/ckpt"}},
  };
}

// ---------------------------------------------------------------------------------------------------------------
// config.json: the tiny DeepSeek-V3 fixture's, edited (M1, M2 and type errors).
std::function<void()> cfg_case(std::function<void(Json&)> edit, const std::string& fixture_name = "tiny-v3") {
  return [=] {
    std::ifstream in(fixture("models/" + fixture_name + "/config.json"));
    Json j = Json::parse(in);
    edit(j);
    parse_config(j, "config.json");
  };
}
auto cfg_set(const std::string& key, Json v, const std::string& fixture_name = "tiny-v3") {
  return cfg_case([=](Json& j) { j[key] = v; }, fixture_name);
}

std::vector<Case> config_cases() {
  return {
      {"M1", "hidden_size missing", cfg_case([](Json& j) { j.erase("hidden_size"); }), {"config.json", "hidden_size"}},
      {"M1", "vocab_size missing", cfg_case([](Json& j) { j.erase("vocab_size"); }), {"vocab_size"}},
      {"M1", "num_hidden_layers missing", cfg_case([](Json& j) { j.erase("num_hidden_layers"); }), {"num_hidden_layers"}},
      {"M1", "kv_lora_rank missing", cfg_case([](Json& j) { j.erase("kv_lora_rank"); }), {"kv_lora_rank"}},
      {"M1", "model_type missing", cfg_case([](Json& j) { j.erase("model_type"); }), {"model_type"}},
      {"M1", "hidden_size a string", cfg_set("hidden_size", "128"), {"hidden_size"}},
      {"M1", "hidden_size a float", cfg_set("hidden_size", 128.5), {"hidden_size"}},
      {"M1", "hidden_size a bool", cfg_set("hidden_size", true), {"hidden_size"}},
      {"M1", "hidden_size null", cfg_set("hidden_size", nullptr), {"hidden_size"}},
      {"M1", "num_hidden_layers 1e30", cfg_set("num_hidden_layers", 1e30), {"num_hidden_layers"}},
      {"M1", "num_hidden_layers 0", cfg_set("num_hidden_layers", 0), {"num_hidden_layers"}},
      {"M1", "rms_norm_eps a string", cfg_set("rms_norm_eps", "1e-6"), {"rms_norm_eps"}},
      {"M1", "tie_word_embeddings a number", cfg_set("tie_word_embeddings", 1), {"tie_word_embeddings"}},
      {"M1", "model_type unknown", cfg_set("model_type", "mistral"), {"model_type 'mistral'", "not supported"}},
      {"M1", "model_type a number", cfg_set("model_type", 3), {"model_type"}},
      {"M1", "eos_token_id a string", cfg_set("eos_token_id", "</s>"), {"eos_token_id"}},
      {"M1", "config.json not an object", [] { parse_config(Json::array(), "config.json"); }, {"config.json"}},
      {"M1", "config.json not JSON", [] { parse_config(parse_json_text("{\"a\":", "config.json"), "config.json"); },
       {"config.json", "invalid JSON"}},
      {"M1", "config.json with a duplicate key", [] {
         parse_config(parse_json_text(R"({"hidden_size":1,"hidden_size":2})", "config.json"), "config.json");
       }, {"duplicate JSON key 'hidden_size'"}},
      {"M2", "num_attention_heads 0", cfg_set("num_attention_heads", 0), {"num_attention_heads"}},
      {"M2", "vocab_size negative", cfg_set("vocab_size", -5), {"vocab_size"}},
      {"M2", "hidden_size 2^40", cfg_set("hidden_size", int64_t(1) << 40), {"hidden_size"}},
      {"M2", "kv_lora_rank 0", cfg_set("kv_lora_rank", 0), {"kv_lora_rank"}},
      {"M2", "kv_lora_rank past the cap", cfg_set("kv_lora_rank", 1 << 20), {"kv_lora_rank"}},
      {"M2", "qk_rope_head_dim 0", cfg_set("qk_rope_head_dim", 0), {"qk_rope_head_dim"}},
      {"M2", "qk_rope_head_dim odd", cfg_set("qk_rope_head_dim", 7), {"qk_rope_head_dim = 7 must be even"}},
      {"M2", "v_head_dim 0", cfg_set("v_head_dim", 0), {"v_head_dim"}},
      {"M2", "num_experts_per_tok above n_routed_experts", cfg_set("num_experts_per_tok", 17), {"num_experts_per_tok"}},
      {"M2", "num_experts_per_tok 0", cfg_set("num_experts_per_tok", 0), {"num_experts_per_tok"}},
      {"M2", "n_group not dividing the experts", cfg_set("n_group", 3), {"n_group"}},
      {"M2", "n_group 0", cfg_set("n_group", 0), {"n_group"}},
      {"M2", "topk_group above n_group", cfg_set("topk_group", 9), {"topk_group"}},
      {"M2", "first_k_dense_replace past the layers", cfg_set("first_k_dense_replace", 99), {"first_k_dense_replace"}},
      {"M2", "moe_layer_freq 0", cfg_set("moe_layer_freq", 0), {"moe_layer_freq"}},
      {"M2", "routed_scaling_factor negative", cfg_set("routed_scaling_factor", -1.0), {"routed_scaling_factor"}},
      {"M2", "num_nextn_predict_layers 1000", cfg_set("num_nextn_predict_layers", 1000), {"num_nextn_predict_layers"}},
      {"M2", "scoring_func unknown", cfg_set("scoring_func", "tanh"), {"scoring_func 'tanh'"}},
      {"M2", "topk_method unknown", cfg_set("topk_method", "mystery"), {"topk_method 'mystery'"}},
      {"M2", "rope_scaling type unknown", cfg_case([](Json& j) { j["rope_scaling"] = {{"type", "dynamic"}}; }),
       {"rope_scaling"}},
      {"M2", "max_position_embeddings negative", cfg_set("max_position_embeddings", -1), {"max_position_embeddings"}},
      {"M2", "quantization_config not fp8", cfg_case([](Json& j) { j["quantization_config"] = {{"quant_method", "awq"}}; }),
       {"quant_method 'awq'"}},
      {"M2", "weight_block_size of 3", cfg_case([](Json& j) {
         j["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {128, 128, 1}}};
       }), {"weight_block_size must be [rows, cols]"}},
      {"M2", "weight_block_size 0", cfg_case([](Json& j) {
         j["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {0, 128}}};
       }), {"weight_block_size[0]"}},
      {"M2", "attention_bias on an MLA model", cfg_set("attention_bias", true), {"attention_bias"}},
      {"M2", "dense: kv heads not dividing heads", cfg_set("num_key_value_heads", 3, "tiny-qwen3"),
       {"num_key_value_heads"}},
      {"M2", "dense: head_dim 0", cfg_set("head_dim", 0, "tiny-qwen3"), {"head_dim"}},
      {"M2", "dense: num_key_value_heads 0", cfg_set("num_key_value_heads", 0, "tiny-qwen2"), {"num_key_value_heads"}},
  };
}

// ---------------------------------------------------------------------------------------------------------------
// tokenizer.json: a small byte-level BPE tokenizer, edited, loaded from a folder as a model's would be.
const char* const kTokJson = R"({
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "c": 4}, "merges": ["a b"]},
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
  "added_tokens": [{"id": 5, "content": "<s>", "special": true}],
  "decoder": {"type": "ByteLevel"}})";

std::function<void()> tok_case(std::function<void(Json&)> edit) {
  return [=] {
    TempDir d;
    Json j = Json::parse(kTokJson);
    edit(j);
    write_text(d / "tokenizer.json", j.dump());
    tok::Tokenizer::from_dir(d.path());
  };
}
std::function<void()> tok_text(const std::string& text) {
  return [=] {
    TempDir d;
    write_text(d / "tokenizer.json", text);
    tok::Tokenizer::from_dir(d.path());
  };
}

std::vector<Case> tokenizer_cases() {
  return {
      {"tokenizer", "not JSON", tok_text("{\"model\":"), {"tokenizer.json", "invalid JSON"}},
      {"tokenizer", "missing file", [] {
         TempDir d;
         tok::Tokenizer::from_dir(d.path());
       }, {"tokenizer.json", "cannot open"}},
      {"tokenizer", "no model section", tok_case([](Json& j) { j.erase("model"); }), {"no \"model\" section"}},
      {"tokenizer", "model type Unigram", tok_case([](Json& j) { j["model"]["type"] = "Unigram"; }),
       {"model type 'Unigram'"}},
      {"tokenizer", "BPE dropout", tok_case([](Json& j) { j["model"]["dropout"] = 0.1; }), {"dropout"}},
      {"tokenizer", "byte_fallback", tok_case([](Json& j) { j["model"]["byte_fallback"] = true; }), {"byte_fallback"}},
      {"tokenizer", "vocab an array", tok_case([](Json& j) { j["model"]["vocab"] = {1, 2}; }),
       {"model.vocab must be an object"}},
      {"tokenizer", "negative vocabulary id", tok_case([](Json& j) { j["model"]["vocab"]["a"] = -1; }),
       {"'a' has id -1", "out of range"}},
      {"tokenizer", "vocabulary id 2^30", tok_case([](Json& j) { j["model"]["vocab"]["a"] = 1 << 30; }),
       {"'a' has id 1073741824", "out of range"}},
      {"tokenizer", "merge without a space", tok_case([](Json& j) { j["model"]["merges"] = {"ab"}; }),
       {"malformed merge 'ab'"}},
      {"tokenizer", "merge of unknown tokens", tok_case([](Json& j) { j["model"]["merges"] = {"x y"}; }),
       {"merge 'x y'"}},
      {"tokenizer", "merge entry of 3 parts", tok_case([](Json& j) { j["model"]["merges"] = {{"a", "b", "c"}}; }),
       {"malformed merge entry"}},
      {"tokenizer", "added token id out of range", tok_case([](Json& j) { j["added_tokens"][0]["id"] = 1 << 30; }),
       {"'<s>' has id 1073741824", "out of range"}},
      {"tokenizer", "added token with lstrip", tok_case([](Json& j) { j["added_tokens"][0]["lstrip"] = true; }),
       {"added token '<s>' uses lstrip"}},
      {"tokenizer", "unsupported normalizer", tok_case([](Json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }),
       {"normalizer"}},
      {"tokenizer", "unsupported pre-tokenizer", tok_case([](Json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }),
       {"unsupported pre-tokenizer type 'Whitespace'"}},
      {"tokenizer", "regex that does not compile", tok_case([](Json& j) {
         j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}};
       }), {"regex does not compile"}},
      {"tokenizer", "Split with invert", tok_case([](Json& j) {
         j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"invert", true}};
       }), {"invert"}},
      {"tokenizer", "Split behaviour unknown", tok_case([](Json& j) {
         j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Merged"}};
       }), {"Split behaviour 'Merged'"}},
      {"tokenizer", "ByteLevel with add_prefix_space", tok_case([](Json& j) {
         j["pre_tokenizer"]["add_prefix_space"] = true;
       }), {"add_prefix_space"}},
      {"tokenizer", "vocab id a string", tok_case([](Json& j) { j["model"]["vocab"]["a"] = "0"; }),
       {"'a' has id \"0\"", "not an integer"}},
  };
}

// ---------------------------------------------------------------------------------------------------------------
// GGUF: the image of gguf_image.h, mutated field by field (G1-G13), its vocabulary (G15) and config (M1/M2).
void gguf_load(const std::vector<uint8_t>& img) { GgufFile::parse(img.data(), img.size(), "t.gguf"); }
std::function<void()> gg(std::function<void(Image&)> make, std::function<void(std::vector<uint8_t>&)> patch = nullptr) {
  return [=] {
    Image im;
    if (make) make(im);
    auto img = im.bytes();
    if (patch) patch(img);
    gguf_load(img);
  };
}

std::vector<Case> gguf_cases() {
  auto kv_set = [](const std::string& key, uint32_t type, std::vector<uint8_t> payload) {
    return [=](Image& im) {
      for (Kv& k : im.kv)
        if (k.key == key) {
          k.type = type;
          k.payload = payload;
          return;
        }
      im.kv.push_back({key, type, payload});
    };
  };
  auto arr = [](uint32_t et, uint64_t n, std::vector<uint8_t> tail = {}) {
    std::vector<uint8_t> b;
    put<uint32_t>(b, et);
    put<uint64_t>(b, n);
    b.insert(b.end(), tail.begin(), tail.end());
    return b;
  };
  auto t1 = [](std::function<void(Ti&)> f) { return [=](Image& im) { f(im.tensors[1]); }; };
  struct G {
    const char* what;
    std::function<void(Image&)> make;
    std::vector<std::string> expect;
    std::function<void(std::vector<uint8_t>&)> patch = nullptr;
  };
  const std::vector<G> table = {
      // G2
      {"bad magic", nullptr, {"not a GGUF file"}, [](std::vector<uint8_t>& b) { b[0] = 'X'; }},
      {"version 0", [](Image& im) { im.version = 0; }, {"version 0", "not supported"}},
      {"version 1", [](Image& im) { im.version = 1; }, {"version 1", "not supported"}},
      {"version 4", [](Image& im) { im.version = 4; }, {"version 4"}},
      {"byte-swapped version", [](Image& im) { im.version = 0x03000000; }, {"big-endian"}},
      // G3
      {"n_kv 2^63-1", [](Image& im) { im.n_kv = int64_t((~uint64_t(0)) >> 1); }, {"metadata entries"}},
      {"n_kv 2^64-1", nullptr, {"metadata entries"},
       [](std::vector<uint8_t>& b) { std::memset(b.data() + 16, 0xff, 8); }},
      {"n_tensors 2^64-1", nullptr, {"tensors but the file"},
       [](std::vector<uint8_t>& b) { std::memset(b.data() + 8, 0xff, 8); }},
      {"n_tensors larger than the tensor infos", [](Image& im) { im.n_tensors = 3; }, {"tensor 2"}},
      // G4
      {"empty key", kv_set("", 4, val<uint32_t>(1)), {"is empty"}},
      {"key over 65535 bytes", kv_set(std::string(70000, 'k'), 4, val<uint32_t>(1)), {"65535"}},
      {"key with a NUL", kv_set(std::string("a\0b", 3), 4, val<uint32_t>(1)), {"printable ASCII"}},
      {"non-ASCII key", kv_set("ключ", 4, val<uint32_t>(1)), {"printable ASCII"}},
      {"key length past the end", nullptr, {"metadata key 0", "at most 65535"},
       [](std::vector<uint8_t>& b) { const uint64_t n = uint64_t(1) << 40; std::memcpy(b.data() + 24, &n, 8); }},
      // G5
      {"duplicate key", [](Image& im) { im.kv.push_back(im.kv[0]); }, {"'general.architecture' appears twice"}},
      {"value type 13", kv_set("x.y", 13, {}), {"unknown value type 13"}},
      {"value type -1", kv_set("x.y", 0xffffffffu, {}), {"unknown value type 4294967295"}},
      {"array of arrays", kv_set("x.y", 9, arr(9, 1)), {"nested arrays"}},
      {"array element type 13", kv_set("x.y", 9, arr(13, 1)), {"unknown element type 13"}},
      {"array count beyond the file", kv_set("x.y", 9, arr(6, uint64_t(1) << 40)), {"claims", "elements"}},
      {"string array count beyond the file", kv_set("x.y", 9, arr(8, uint64_t(1) << 60)), {"claims", "elements"}},
      {"string length beyond the file", kv_set("x.y", 8, val<uint64_t>(1000000)), {"ends inside"}},
      // G6
      {"bool 2", kv_set("x.flag", 7, val<uint8_t>(2)), {"bool holding 2"}},
      {"alignment as i32", kv_set("general.alignment", 5, val<int32_t>(32)), {"general.alignment must be a u32"}},
      {"alignment as a string", kv_set("general.alignment", 8, str_val("32")), {"general.alignment must be a u32"}},
      {"split.count as a string", kv_set("split.count", 8, str_val("2")), {"split.count"}},
      // G7
      {"alignment 0", kv_set("general.alignment", 4, val<uint32_t>(0)), {"power of two"}},
      {"alignment 13", kv_set("general.alignment", 4, val<uint32_t>(13)), {"power of two"}},
      {"alignment 2^31", kv_set("general.alignment", 4, val<uint32_t>(1u << 31)), {"power of two"}},
      // G8
      {"string over 64 MiB", kv_set("x.y", 8, val<uint64_t>(uint64_t(65) << 20)), {"at most"}},
      {"u64 array element past 2^63-1", kv_set("x.y", 9, [&] {
         auto b = arr(10, 1);
         put<uint64_t>(b, ~uint64_t(0));
         return b;
       }()), {"above 2^63-1"}},
      // G9
      {"empty tensor name", t1([](Ti& t) { t.name = ""; }), {"empty name"}},
      {"tensor name of 64 bytes", t1([](Ti& t) { t.name = std::string(64, 'n'); }), {"64 bytes", "at most 63"}},
      {"duplicate tensor name", t1([](Ti& t) { t.name = "token_embd.weight"; }), {"appears twice"}},
      {"tensor name not UTF-8", t1([](Ti& t) { t.name = "a\xff"; }), {"not valid UTF-8"}},
      // G10
      {"0 dimensions", t1([](Ti& t) { t.ne = {}; }), {"0 dimensions"}},
      {"5 dimensions", t1([](Ti& t) { t.ne = {32, 1, 1, 1, 1}; }), {"5 dimensions"}},
      {"dimension 0", t1([](Ti& t) { t.ne = {64, 0}; }), {"ne[1] = 0"}},
      {"dimension 2^63", t1([](Ti& t) { t.ne = {64, uint64_t(1) << 63}; }), {"ne[1]"}},
      {"element count overflow", t1([](Ti& t) { t.ne = {uint64_t(1) << 32, uint64_t(1) << 32}; }), {"overflows"}},
      {"element count wrapping to 0", t1([](Ti& t) { t.ne = {uint64_t(1) << 33, uint64_t(1) << 31}; }),
       {"overflows"}},
      // G11
      {"type id 4 (removed)", t1([](Ti& t) { t.type = 4; }), {"ggml type id 4"}},
      {"type id 31 (removed)", t1([](Ti& t) { t.type = 31; }), {"ggml type id 31"}},
      {"type id 1000", t1([](Ti& t) { t.type = 1000; }), {"ggml type id 1000"}},
      // G12
      {"Q8_0 row of 48", t1([](Ti& t) { t.ne = {48, 2}; }), {"not a multiple of Q8_0's block of 32"}},
      {"Q4_K row of 128", t1([](Ti& t) { t.type = 12; t.ne = {128, 2}; }), {"Q4_K's block of 256"}},
      // G13
      {"offset not aligned", t1([](Ti& t) { t.offset = 65; }), {"not a multiple of the alignment"}},
      {"gap between tensors", t1([](Ti& t) { t.offset = 96; }), {"where 64 was expected"}},
      {"overlapping tensors", t1([](Ti& t) { t.offset = 0; }), {"where 64 was expected"}},
      {"data section one byte short", nullptr, {"needs bytes", "of the data section"},
       [](std::vector<uint8_t>& b) { b.resize(b.size() - 29); }},
      {"tensor far past the end", t1([](Ti& t) { t.ne = {64, 1 << 20}; }), {"needs bytes"}},
      {"tensor offset near 2^63", t1([](Ti& t) { t.offset = int64_t(~uint64_t(0) >> 1) & ~int64_t(31); }),
       {"offset 9223372036854775776 where 64 was expected"}},
      {"f64 value cut by the end of the file", [](Image& im) {
         im.tensors.clear();
         im.align = 1;
         im.kv.push_back({"x.y", 12, {1, 2}});
       }, {"ends inside", "'x.y'"}},
      {"bool 255", kv_set("x.flag", 7, val<uint8_t>(255)), {"bool holding 255"}},
      {"alignment 3", kv_set("general.alignment", 4, val<uint32_t>(3)), {"power of two"}},
      {"alignment 2^30 + 1", kv_set("general.alignment", 4, val<uint32_t>((1u << 30) + 1)), {"power of two"}},
      {"tensor type id 2^32-1", t1([](Ti& t) { t.type = 0xffffffffu; }), {"ggml type id 4294967295"}},
      {"tensor type id 36 (removed)", t1([](Ti& t) { t.type = 36; }), {"ggml type id 36"}},
      {"dimension 2^64-1", t1([](Ti& t) { t.ne = {64, ~uint64_t(0)}; }), {"ne[1]"}},
      {"n_dims 2^32-1", nullptr, {"t.gguf"}, nullptr},
  };
  std::vector<Case> out;
  for (const G& g : table) {
    const std::string w = g.what;
    out.push_back({"GGUF", w, gg(g.make, g.patch), g.expect});
  }
  // n_dims 2^32-1: patch the second tensor's n_dims field in place (found by its name).
  out.back().load = [] {
    auto img = Image().bytes();
    const std::string name = "blk.0.attn_q.weight";
    auto it = std::search(img.begin(), img.end(), name.begin(), name.end());
    const size_t at = size_t(it - img.begin()) + name.size();
    std::memset(img.data() + at, 0xff, 4);
    gguf_load(img);
  };
  out.back().expect = {"dimensions"};
  // G1: truncation inside each region of the file.
  const auto full = Image().bytes();
  for (size_t cut : {size_t(0), size_t(3), size_t(4), size_t(7), size_t(15), size_t(23), size_t(30), size_t(60),
                     size_t(100), size_t(200), full.size() / 2, full.size() - 40}) {
    out.push_back({"G1", "truncated to " + std::to_string(cut) + " bytes", [full, cut] {
                     gguf_load(std::vector<uint8_t>(full.begin(), full.begin() + long(cut)));
                   }, {"t.gguf"}});
  }
  return out;
}

// G15: the vocabulary a GGUF carries (tokenizer.ggml.*), read into a tokenizer.
std::function<void()> vocab_case(std::function<void(Image&)> make) {
  return [=] {
    Image im;
    im.kv = {{"general.architecture", 8, str_val("deepseek2")},
             {"tokenizer.ggml.model", 8, str_val("gpt2")},
             {"tokenizer.ggml.pre", 8, str_val("deepseek-v3")},
             {"tokenizer.ggml.tokens", 9, str_array({"a", "b", "ab", "<s>"})},
             {"tokenizer.ggml.token_type", 9, [] {
                std::vector<uint8_t> b;
                put<uint32_t>(b, 5);
                put<uint64_t>(b, 4);
                for (int32_t t : {1, 1, 1, 3}) put<int32_t>(b, t);
                return b;
              }()},
             {"tokenizer.ggml.merges", 9, str_array({"a b"})},
             {"tokenizer.ggml.bos_token_id", 4, val<uint32_t>(3)},
             {"tokenizer.ggml.eos_token_id", 4, val<uint32_t>(3)}};
    im.tensors.clear();
    make(im);
    TempDir d;
    write_file(d / "v.gguf", im.bytes());
    tok::tokenizer_from_gguf(d / "v.gguf");  // the metadata checks, then the tokenizer built from them
  };
}
auto vocab_set(const std::string& key, uint32_t type, std::vector<uint8_t> payload) {
  return vocab_case([=](Image& im) {
    for (Kv& k : im.kv)
      if (k.key == key) {
        k.type = type;
        k.payload = payload;
        return;
      }
    im.kv.push_back({key, type, payload});
  });
}
auto vocab_drop(const std::string& key) {
  return vocab_case([=](Image& im) {
    std::erase_if(im.kv, [&](const Kv& k) { return k.key == key; });
  });
}

std::vector<Case> vocab_cases() {
  auto i32_array = [](std::vector<int32_t> v) {
    std::vector<uint8_t> b;
    put<uint32_t>(b, 5);
    put<uint64_t>(b, v.size());
    for (int32_t x : v) put<int32_t>(b, x);
    return b;
  };
  return {
      {"G15", "tokens missing", vocab_drop("tokenizer.ggml.tokens"), {"tokenizer.ggml.tokens", "missing"}},
      {"G15", "tokens empty", vocab_set("tokenizer.ggml.tokens", 9, str_array({})), {"tokenizer.ggml.tokens"}},
      {"G15", "tokens not strings", vocab_set("tokenizer.ggml.tokens", 9, i32_array({1, 2, 3, 4})),
       {"tokenizer.ggml.tokens"}},
      {"G15", "token_type count differs", vocab_set("tokenizer.ggml.token_type", 9, i32_array({1, 1, 1})),
       {"tokenizer.ggml.token_type has 3"}},
      {"G15", "token type 9", vocab_set("tokenizer.ggml.token_type", 9, i32_array({1, 9, 1, 3})),
       {"tokenizer.ggml.token_type[1]"}},
      {"G15", "bos id past the vocabulary", vocab_set("tokenizer.ggml.bos_token_id", 4, val<uint32_t>(4)),
       {"tokenizer.ggml.bos_token_id", "outside the vocabulary"}},
      {"G15", "eos id 2^32-1", vocab_set("tokenizer.ggml.eos_token_id", 4, val<uint32_t>(0xffffffffu)),
       {"tokenizer.ggml.eos_token_id"}},
      {"G15", "bos id negative", vocab_set("tokenizer.ggml.bos_token_id", 5, val<int32_t>(-1)),
       {"tokenizer.ggml.bos_token_id"}},
      {"G15", "bos id a string", vocab_set("tokenizer.ggml.bos_token_id", 8, str_val("1")),
       {"tokenizer.ggml.bos_token_id", "must be an integer"}},
      {"G15", "model not gpt2", vocab_set("tokenizer.ggml.model", 8, str_val("llama")), {"tokenizer.ggml.model = 'llama'"}},
      {"G15", "unknown pre-tokenizer", vocab_set("tokenizer.ggml.pre", 8, str_val("mystery")),
       {"tokenizer.ggml.pre = 'mystery'"}},
      {"G15", "duplicate token text", vocab_set("tokenizer.ggml.tokens", 9, str_array({"a", "b", "a", "<s>"})),
       {"tokenizer.ggml.tokens[2]"}},
      {"G15", "merge of unknown tokens", vocab_set("tokenizer.ggml.merges", 9, str_array({"x y"})),
       {"v.gguf", "tokenizer.ggml.* metadata is invalid", "merge 'x y'"}},
      {"G15", "byte token <0xZZ>", vocab_case([=](Image& im) {
         im.kv[3].payload = str_array({"a", "b", "<0xZZ>", "<s>"});
         im.kv[4].payload = i32_array({1, 1, 6, 3});
       }), {"token_type[2] = 6"}},
  };
}

// ---------------------------------------------------------------------------------------------------------------
// M3 / S10: the tensor set of a tiny model folder against its config (bind_weights, as the engine loads it).
struct TensorCopy {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
using TensorSet = std::map<std::string, TensorCopy>;

const TensorSet& fixture_tensors(const std::string& name) {
  static std::map<std::string, TensorSet> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  TensorSet m;
  auto ck = Checkpoint::open(fixture("models/" + name));
  for (const auto& n : ck->names()) {
    const TensorInfo* t = ck->find(n);
    m[n] = {std::string(dtype_name(t->dtype)), t->shape,
            std::string(reinterpret_cast<const char*>(t->data), size_t(t->nbytes()))};
  }
  return cache.emplace(name, std::move(m)).first->second;
}

// Rewrites the tensors as one safetensors image the way the library does: largest element first, header padded.
std::vector<uint8_t> write_image(const TensorSet& m) {
  std::vector<std::pair<std::string, const TensorCopy*>> order;
  for (const auto& [n, t] : m) order.emplace_back(n, &t);
  auto elem = [](const TensorCopy* t) {
    DType d;
    return parse_dtype(t->dtype, &d) ? dtype_size(d) : 1;
  };
  std::stable_sort(order.begin(), order.end(), [&](auto& a, auto& b) { return elem(a.second) > elem(b.second); });
  Json h = Json::object();
  uint64_t off = 0;
  std::string data;
  for (const auto& [n, t] : order) {
    h[n] = {{"dtype", t->dtype}, {"shape", t->shape}, {"data_offsets", {off, off + t->bytes.size()}}};
    off += t->bytes.size();
    data += t->bytes;
  }
  std::vector<uint8_t> img = st_image(h.dump(), 0);
  img.insert(img.end(), data.begin(), data.end());
  return img;
}

std::function<void()> model_case(const std::string& fixture_name, std::function<void(TensorSet&)> edit) {
  return [=] {
    TensorSet m = fixture_tensors(fixture_name);
    edit(m);
    TempDir d;
    write_file(d / "model.safetensors", write_image(m));
    const ModelConfig cfg = load_config(fixture("models/" + fixture_name + "/config.json"));
    auto ck = Checkpoint::open(d.path());
    const Checkpoint* c = ck.get();
    model::bind_weights(cfg, [c](const std::string& name, model::RawTensor* out) {
      const TensorInfo* t = c->find(name);
      if (!t) return false;
      *out = {t->data, t->dtype, t->shape};
      return true;
    }, ck->names(), d.path());
  };
}

std::vector<Case> model_cases() {
  const std::string kv_b = "model.layers.1.self_attn.kv_b_proj.weight";
  const std::string kv_a = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight";
  return {
      {"M3", "missing tensor", model_case("tiny-v3", [=](TensorSet& t) { t.erase(kv_b); }), {"missing tensor", kv_b}},
      {"M3", "missing embedding", model_case("tiny-v3", [](TensorSet& t) { t.erase("model.embed_tokens.weight"); }),
       {"model.embed_tokens.weight"}},
      {"M3", "missing final norm", model_case("tiny-v3", [](TensorSet& t) { t.erase("model.norm.weight"); }),
       {"model.norm.weight"}},
      {"M3", "wrong shape", model_case("tiny-v3", [=](TensorSet& t) { t[kv_a].shape = {80, 64}; }),
       {"kv_a_proj_with_mqa", "[80, 64]", "expected [40, 128]"}},
      {"M3", "transposed shape", model_case("tiny-v3", [=](TensorSet& t) { t[kv_a].shape = {128, 40}; }),
       {"kv_a_proj_with_mqa", "[128, 40]"}},
      {"M3", "rank 3 instead of 2", model_case("tiny-v3", [=](TensorSet& t) { t[kv_a].shape = {40, 64, 2}; }),
       {"kv_a_proj_with_mqa"}},
      {"M3", "unexpected tensor", model_case("tiny-v3", [](TensorSet& t) {
         t["model.layers.0.mlp.extra.weight"] = {"BF16", {2}, std::string(4, '\0')};
       }), {"unexpected tensor", "model.layers.0.mlp.extra.weight"}},
      {"M3", "layer past num_hidden_layers", model_case("tiny-v3", [](TensorSet& t) {
         t["model.layers.9.input_layernorm.weight"] = {"BF16", {2}, std::string(4, '\0')};
       }), {"model.layers.9.input_layernorm.weight"}},
      {"M3", "wrong dtype", model_case("tiny-v3", [](TensorSet& t) {
         auto& b = t["model.layers.1.mlp.gate.e_score_correction_bias"];
         b.dtype = "BF16";
         b.bytes.resize(b.bytes.size() / 2);
       }), {"e_score_correction_bias", "must be F32"}},
      {"M3", "integer weight", model_case("tiny-v3", [](TensorSet& t) { t["model.norm.weight"].dtype = "I16"; }),
       {"tensor 'model.norm.weight' has dtype I16", "expected BF16, F16 or F32"}},
      {"M3", "partial MTP layer", model_case("tiny-v3", [](TensorSet& t) { t.erase("model.layers.3.eh_proj.weight"); }),
       {"missing tensor", "model.layers.3.eh_proj.weight"}},
      {"S10", "FP8 scale grid of the wrong shape", model_case("tiny-v3-fp8", [](TensorSet& t) {
         t["model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv"].shape = {1, 4};
       }), {"kv_a_proj_with_mqa.weight_scale_inv", "[1, 4]", "expected [2, 2]"}},
      {"S10", "FP8 weight without its scale", model_case("tiny-v3-fp8", [](TensorSet& t) {
         t.erase("model.layers.1.self_attn.o_proj.weight_scale_inv");
       }), {"model.layers.1.self_attn.o_proj.weight", "F8_E4M3", "block scale"}},
      {"S10", "scale on a BF16 weight", model_case("tiny-v3", [](TensorSet& t) {
         t["model.layers.0.self_attn.o_proj.weight_scale_inv"] = {"F32", {1, 1}, std::string(4, '\0')};
       }), {"o_proj.weight", "expected F8_E4M3"}},
      {"S10", "BF16 scale for an FP8 weight", model_case("tiny-v3-fp8", [](TensorSet& t) {
         auto& s = t["model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv"];
         s.dtype = "BF16";
         s.bytes.resize(s.bytes.size() / 2);
       }), {"kv_a_proj_with_mqa.weight_scale_inv"}},
      {"S10", "FP8 weight stored as F8_E5M2", model_case("tiny-v3-fp8", [](TensorSet& t) {
         t["model.layers.0.self_attn.kv_a_proj_with_mqa.weight"].dtype = "F8_E5M2";
       }), {"kv_a_proj_with_mqa.weight' has a block scale", "dtype F8_E5M2 (expected F8_E4M3)"}},
  };
}

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto part : {safetensors_cases(), index_cases(), config_cases(), tokenizer_cases(), gguf_cases(), vocab_cases(),
                    model_cases()})
    all.insert(all.end(), part.begin(), part.end());
  return all;
}

// The unmutated inputs load: each case fails for its own defect.
TEST(Malformed, BaseFilesAreValid) {
  EXPECT_NO_THROW(st_load(st_image(kStHeader, 32)));
  EXPECT_NO_THROW(ck_case([](Folder&, const std::string&) {})());
  EXPECT_NO_THROW(cfg_case([](Json&) {})());
  EXPECT_NO_THROW(tok_case([](Json&) {})());
  EXPECT_NO_THROW(gg(nullptr)());
  EXPECT_NO_THROW(vocab_case([](Image&) {})());
  EXPECT_NO_THROW(model_case("tiny-v3", [](TensorSet&) {})());
  EXPECT_NO_THROW(model_case("tiny-v3-fp8", [](TensorSet&) {})());
}

TEST(Malformed, EveryCaseGivesAClearError) {
  const std::vector<Case> cases = all_cases();
  std::printf("%zu malformed cases\n", cases.size());
  std::map<std::string, int> per_group;
  for (const Case& c : cases) ++per_group[c.group];
  for (const auto& [g, n] : per_group) std::printf("  %-9s %d\n", g.c_str(), n);
  EXPECT_GE(cases.size(), 150u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.group + ": " + c.name);
    std::string msg;
    g_largest = 0;
    g_watch = true;
    try {
      c.load();
    } catch (const ds::Error& e) {
      msg = e.what();
    } catch (const std::exception& e) {
      g_watch = false;
      ADD_FAILURE() << "threw a non-ds::Error: " << e.what();
      continue;
    }
    g_watch = false;
    if (std::getenv("DS_MALFORMED_VERBOSE")) std::printf("[%s] %s: %s\n", c.group.c_str(), c.name.c_str(), msg.c_str());
    ASSERT_FALSE(msg.empty()) << "accepted";
    for (const std::string& p : c.expect) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    EXPECT_LT(msg.size(), 800u) << "message too long: " << msg;
    EXPECT_LE(g_largest.load(), kAllocCap) << "largest allocation " << g_largest.load() << " bytes";
  }
}

}  // namespace
}  // namespace ds::io::test

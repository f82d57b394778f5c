// SPDX-License-Identifier: MIT
// HF checkpoint / random weights -> GGUF (see gguf_convert.h).
#include "runtime/gguf_convert.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <system_error>

#include "base/error.h"
#include "base/quant.h"
#include "base/quantize.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/gguf_meta.h"
#include "io/gguf_writer.h"
#include "io/json_util.h"
#include "model/gguf_export.h"
#include "model/random_weights.h"
#include "model/weights.h"
#include "tokenizer/gguf_vocab.h"

namespace ds::rt {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kSlabBytes = uint64_t(64) << 20;   // output bytes computed before they are written
constexpr uint64_t kPieceBytes = uint64_t(4) << 20;   // fp32 rows one thread dequantises at a time

// The Split regexes of a tokenizer.json pre_tokenizer (a Sequence of Splits and a ByteLevel, or one Split).
std::vector<std::string> split_regexes(const io::Json& pre) {
  std::vector<std::string> r;
  auto one = [&](const io::Json& p) {
    if (p.is_object() && p.value("type", std::string()) == "Split" && p.contains("pattern") &&
        p.at("pattern").is_object() && p.at("pattern").contains("Regex") && p.at("pattern").at("Regex").is_string())
      r.push_back(p.at("pattern").at("Regex").get<std::string>());
  };
  if (pre.is_object() && pre.value("type", std::string()) == "Sequence" && pre.contains("pretokenizers") &&
      pre.at("pretokenizers").is_array())
    for (const io::Json& p : pre.at("pretokenizers")) one(p);
  else
    one(pre);
  return r;
}

// The post-processor puts a special token before every text (TemplateProcessing whose `single` starts with one).
bool prepends_special_token(const io::Json& tj) {
  if (!tj.is_object() || !tj.contains("post_processor") || !tj.at("post_processor").is_object()) return false;
  const io::Json& pp = tj.at("post_processor");
  auto template_starts_special = [](const io::Json& p) {
    return p.is_object() && p.value("type", std::string()) == "TemplateProcessing" && p.contains("single") &&
           p.at("single").is_array() && !p.at("single").empty() && p.at("single")[0].is_object() &&
           p.at("single")[0].contains("SpecialToken");
  };
  if (template_starts_special(pp)) return true;
  if (pp.value("type", std::string()) == "Sequence" && pp.contains("processors") && pp.at("processors").is_array())
    for (const io::Json& p : pp.at("processors"))
      if (template_starts_special(p)) return true;
  return false;
}

std::string detect_pre(const io::Json& tj) {
  if (!tj.is_object() || !tj.contains("pre_tokenizer")) return "";
  const std::vector<std::string> have = split_regexes(tj.at("pre_tokenizer"));
  if (have.empty()) return "";
  for (const char* name : {"deepseek-v3", "deepseek-llm", "deepseek-coder", "qwen2", "llama-bpe"})
    if (split_regexes(tok::pre_tokenizer_for_gguf_pre(name)) == have) {
      // The converter names a tokenizer by the hash of its ids for a test text: R1-Distill-Qwen's adds a BOS where
      // Qwen's does not, which makes it "deepseek-r1-qwen" (llama.cpp pre-tokenizes both alike).
      if (std::string(name) == "qwen2" && prepends_special_token(tj)) return "deepseek-r1-qwen";
      return name;
    }
  // DeepSeek LLM / V2 and Coder write their letter and CJK classes with literal characters, which deepseek.cpp's
  // table spells as \x{..} escapes: recognise them by the regexes that are spelled alike.
  if (have.size() == 6 && have[0] == "[\r\n]" && have[3] == "\\s+$" && have[5] == "\\p{N}+") return "deepseek-llm";
  if (have.size() == 5 && have[0] == "[\r\n]" && have[1] == "\\s?\\p{L}+" && have[2] == "\\s?\\p{P}+" &&
      have[4] == "\\p{N}")
    return "deepseek-coder";
  return "";
}

std::string recipes_list() {
  std::string s;
  for (const model::QuantRecipe& r : model::quant_recipes()) s += (s.empty() ? "" : ", ") + std::string(r.name);
  return s;
}

bool same_path(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

// Refuses to write over any file of the checkpoint being read.
void check_not_input(const ConvertOptions& o) {
  DS_CHECK(!o.out.empty(), "quantize: --out is required");
  const fs::path out(o.out);
  DS_CHECK(!fs::is_directory(out), "quantize: --out '", o.out, "' is a directory (give the .gguf file to write)");
  for (const std::string& in : {o.model, o.config}) {
    if (in.empty()) continue;
    DS_CHECK(!same_path(out, in), "quantize: --out '", o.out, "' is the input '", in, "'; refusing to overwrite it");
    if (!fs::is_directory(in)) continue;
    for (const auto& e : fs::directory_iterator(in)) {
      const std::string ext = e.path().extension().string();
      if (ext == ".safetensors" || ext == ".json" || ext == ".jinja" || ext == ".py")
        DS_CHECK(!same_path(out, e.path()), "quantize: --out '", o.out, "' is ", e.path().string(),
                 ", a file of the input checkpoint; refusing to overwrite it");
    }
  }
}

void write_tensor(io::GgufWriter& w, const model::GgufTensorPlan& t, int threads, const ConvertProgressFn& progress,
                  ConvertProgress& pr) {
  const int64_t rows = t.rows(), cols = t.cols();
  const uint64_t rb = uint64_t(row_bytes(t.type, cols));
  const int64_t slab_rows = std::clamp<int64_t>(int64_t(kSlabBytes / std::max<uint64_t>(rb, uint64_t(cols) * 4)), 1, rows);
  const int64_t piece_rows = std::clamp<int64_t>(int64_t(kPieceBytes / (uint64_t(cols) * 4)), 1, slab_rows);
  std::vector<uint8_t> out(size_t(uint64_t(slab_rows) * rb));
  for (int64_t s0 = 0; s0 < rows; s0 += slab_rows) {
    const int64_t sn = std::min(slab_rows, rows - s0);
    const int64_t pieces = (sn + piece_rows - 1) / piece_rows;
    std::exception_ptr err;
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> buf;
#pragma omp for schedule(dynamic, 1)
      for (int64_t pi = 0; pi < pieces; ++pi) {
        try {
          const int64_t r0 = pi * piece_rows, n = std::min(piece_rows, sn - r0);
          buf.resize(size_t(n * cols));
          t.rows_f32(s0 + r0, n, buf.data());
          for (int64_t i = 0; i < n; ++i)
            quantize_row(t.type, buf.data() + i * cols, out.data() + uint64_t(r0 + i) * rb, cols);
        } catch (...) {
#pragma omp critical
          if (!err) err = std::current_exception();
        }
      }
    }
    if (err) std::rethrow_exception(err);
    w.write_data(out.data(), size_t(uint64_t(sn) * rb));
    pr.bytes += uint64_t(sn) * rb;
    if (progress) progress(pr);
  }
}

}  // namespace

std::string detect_tokenizer_pre(const std::string& path) { return detect_pre(io::read_json_file(path, 256u << 20)); }

std::string quantize_types_help() {
  std::string s;
  for (const model::QuantRecipe& r : model::quant_recipes()) {
    char line[256];
    std::snprintf(line, sizeof line, "  %-7s %s\n", r.name, r.help);
    s += line;
  }
  return s;
}

ConvertResult convert_to_gguf(const ConvertOptions& o, const ConvertProgressFn& progress) {
  const model::QuantRecipe* recipe = model::find_recipe(o.type);
  DS_CHECK(recipe, "quantize: --type '", o.type, "' is not one of: ", recipes_list());
  check_not_input(o);
  const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  ConvertResult res;
  res.path = o.out;

  // The weights, bound and checked against the config exactly as for inference.
  io::ModelConfig cfg;
  std::unique_ptr<io::Checkpoint> ckpt;
  std::unique_ptr<model::RandomWeights> rnd;
  model::Weights w;
  io::Json config_json;  // the converter writes some keys only for the fields config.json has
  std::string name;
  if (o.random) {
    DS_CHECK(!o.config.empty(), "quantize: --random-weights needs --config CONFIG.json");
    cfg = io::load_config(o.config);
    if (o.layers > 0) {
      DS_CHECK(o.layers <= cfg.num_hidden_layers, "quantize: --layers ", o.layers, " exceeds num_hidden_layers ",
               cfg.num_hidden_layers);
      cfg.num_hidden_layers = o.layers;
      cfg.first_k_dense_replace = std::min(cfg.first_k_dense_replace, o.layers);
    }
    cfg.num_nextn_predict_layers = 0;
    config_json = io::read_json_file(o.config);
    rnd = std::make_unique<model::RandomWeights>(cfg, o.random_dtype);
    w = model::bind_weights(cfg, rnd->lookup(), rnd->names(), "random weights");
    name = "random-" + fs::path(o.config).stem().string();
  } else {
    DS_CHECK(!o.model.empty(), "quantize: --model HF_DIR is required (or --random-weights --config CONFIG.json)");
    DS_CHECK(fs::is_directory(o.model), "quantize: --model '", o.model,
             "' is not a folder (a Hugging Face checkpoint: config.json + *.safetensors)");
    const std::string cfg_path = (fs::path(o.model) / "config.json").string();
    DS_CHECK(fs::exists(cfg_path), "quantize: '", o.model, "' has no config.json");
    cfg = io::load_config(cfg_path);
    config_json = io::read_json_file(cfg_path);
    ckpt = io::Checkpoint::open(o.model);
    const io::Checkpoint* ck = ckpt.get();
    model::TensorLookup lookup = [ck](const std::string& n, model::RawTensor* out) {
      const io::TensorInfo* t = ck->find(n);
      if (!t) return false;
      *out = {t->data, t->dtype, t->shape};
      return true;
    };
    w = model::bind_weights(cfg, lookup, ck->names(), o.model);
    name = fs::path(o.model).filename().string();
    if (name.empty()) name = fs::path(o.model).parent_path().filename().string();
    if (w.n_mtp > 0)
      res.notes.push_back("the checkpoint's MTP layer (" + std::to_string(w.n_mtp) +
                          ") is not written: llama.cpp's converter skips it too");
  }

  const std::string tmp = o.out + ".tmp";
  try {
    io::GgufWriter gw(tmp);
    if (cfg.mla())
      io::add_deepseek2_metadata(gw, cfg, name, recipe->ftype);
    else
      io::add_dense_metadata(gw, cfg, config_json, name, recipe->ftype);
    // Vocabulary.
    const fs::path tok_json = o.random ? fs::path() : fs::path(o.model) / "tokenizer.json";
    if (!o.random && fs::exists(tok_json)) {
      const io::Json tj = io::read_json_file(tok_json.string(), 256u << 20);
      const fs::path tc_path = fs::path(o.model) / "tokenizer_config.json";
      const io::Json tc = fs::exists(tc_path) ? io::read_json_file(tc_path.string()) : io::Json::object();
      std::string pre = o.tokenizer_pre.empty() ? detect_pre(tj) : o.tokenizer_pre;
      DS_CHECK(!pre.empty(), tok_json.string(),
               ": the pre-tokenizer is not one llama.cpp names here (deepseek-v3, deepseek-llm, deepseek-coder, "
               "qwen2, deepseek-r1-qwen, llama-bpe); give it with --tokenizer-pre NAME");
      DS_CHECK(!tok::pre_tokenizer_for_gguf_pre(pre).is_null(), "quantize: --tokenizer-pre '", pre,
               "' is not a pre-tokenizer deepseek.cpp reads (deepseek-v3, deepseek-llm, deepseek-coder, qwen2, "
               "deepseek-r1-qwen, llama-bpe, default)");
      // LlamaModel.set_vocab records the tokenizer's add_prefix_space ahead of the vocabulary.
      if (cfg.model_type == "llama" && tc.is_object() && tc.contains("add_prefix_space") &&
          tc.at("add_prefix_space").is_boolean())
        gw.set_bool("tokenizer.ggml.add_space_prefix", tc.at("add_prefix_space").get<bool>());
      const fs::path jinja = fs::path(o.model) / "chat_template.jinja";
      io::add_gpt2_tokenizer_metadata(gw, tj, tc, config_json, cfg.vocab_size, pre,
                                      fs::exists(jinja) ? jinja.string() : "", tok_json.string());
    } else {
      const int64_t eos = cfg.eos_token_ids.empty() ? -1 : cfg.eos_token_ids.front();
      if (io::add_placeholder_vocab(gw, cfg.vocab_size, cfg.bos_token_id, eos))
        res.notes.push_back(std::string(o.random ? "random weights have" : "the checkpoint has") +
                            " no tokenizer.json: wrote a placeholder byte-level vocabulary so that llama.cpp can load "
                            "the file; feed it token ids, not text");
      else
        res.notes.push_back("no tokenizer.json and vocab_size < 258: the file has no vocabulary (llama.cpp needs one)");
    }

    // Every type but F32 is what llama-quantize makes of the F32 file, and llama-quantize re-sets these two keys
    // last: the same order makes the whole file byte-identical with its output.
    if (recipe->ftype != 0)
      for (const char* k : {"general.quantization_version", "general.file_type"}) {
        const io::GgufValue v = *gw.find(k);
        gw.remove(k);
        gw.set(k, v);
      }

    const std::vector<model::GgufTensorPlan> plan = model::plan_gguf(cfg, w, *recipe);
    for (const model::GgufTensorPlan& t : plan) {
      gw.add_tensor(t.name, t.ne, io::ggml_type_of(t.type));
      ++res.type_counts[std::string(dtype_name(t.type))];
    }
    ConvertProgress pr;
    pr.tensors = plan.size();
    for (size_t i = 0; i < plan.size(); ++i) pr.total += gw.tensor_bytes(i);
    gw.write_header();
    for (size_t i = 0; i < plan.size(); ++i) {
      pr.tensor = i;
      pr.name = plan[i].name;
      pr.type = plan[i].type;
      write_tensor(gw, plan[i], threads, progress, pr);
    }
    pr.tensor = plan.size();
    if (progress) progress(pr);
    gw.finish();
    res.tensors = plan.size();
    res.bytes = gw.file_bytes();
    std::error_code ec;
    fs::rename(tmp, o.out, ec);
    DS_CHECK(!ec, o.out, ": cannot rename ", tmp, " to it (", ec.message(), ")");
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  return res;
}

}  // namespace ds::rt

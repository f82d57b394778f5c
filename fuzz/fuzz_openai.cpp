// SPDX-License-Identifier: MIT
// Fuzzes the OpenAI request parsers (src/server/openai.h) without the HTTP server: the body as the server gets it
// goes through parse_body, then parse_chat and parse_completion (each with response_format), as POST
// /v1/chat/completions and /v1/completions do, with the real DeepSeek-V3 tokenizer and chat template, and chat once
// more through DeepSeek-V3.2's encoding. The same bytes are also parsed as model output by the tool-call parsers and
// V3.2's completion parser. A rejection must be an ApiError (the server answers it as a 4xx); any other exception
// would be a 500 and is reported as a finding (abort).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "base/error.h"
#include "fuzz_util.h"
#include "server/openai.h"
#include "tokenizer/dsv32_encoding.h"

namespace {

using namespace ds::server;

ParseContext* make_context(const ds::tok::ChatFormat* fmt) {
  const ds::tok::Tokenizer& tok = ds::fuzz::v3_tokenizer();
  auto* c = new ParseContext;
  c->tok = &tok;
  c->fmt = fmt;
  c->tools = tool_support(*fmt);
  c->model_name = "fuzz";
  c->vocab = int64_t(tok.vocab_size());
  c->ctx = 4096;
  c->limits.max_tokens = 256;
  c->json_vocab = std::make_shared<const TokenVocab>(tok, c->vocab, std::vector<int32_t>{tok.eos_id()});
  return c;
}

const ParseContext& context() {
  static const ParseContext* pc = [] {
    const ds::tok::Tokenizer& tok = ds::fuzz::v3_tokenizer();
    return make_context(new ds::tok::ChatFormat(ds::tok::ChatTemplate::from_tokenizer(tok)));
  }();
  return *pc;
}

const ParseContext& dsv32_context() {
  static const ParseContext* pc = make_context(new ds::tok::ChatFormat(ds::tok::ChatFormat::dsv32()));
  return *pc;
}

void one(const std::string& body, bool chat, const ParseContext& c) {
  try {
    const json b = parse_body(body, c.limits.max_json_depth);
    const auto ordered = nlohmann::ordered_json::parse(body);
    CompletionRequest r = chat ? parse_chat(b, c, &ordered) : parse_completion(b, c);
    parse_response_format(ordered, c, r);
  } catch (const ApiError& e) {
    if (e.status < 400 || e.status > 499) {
      std::fprintf(stderr, "ApiError with status %d: %s\n", e.status, e.what());
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-ApiError exception (the server would answer 500): %s\n", e.what());
    std::abort();
  }
}

}  // namespace

// Loads the tokenizer (and the rest of the fixed state) before fuzzing starts, outside the per-input timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)context();
  (void)dsv32_context();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  one(body, true, context());
  one(body, false, context());
  one(body, true, dsv32_context());
  // The same bytes as model output: the tool-call parsers must not crash on anything, V3.2's completion parser may
  // only refuse with ds::Error.
  for (auto f : {ToolFormat::DeepSeekV3, ToolFormat::DeepSeekV31, ToolFormat::Hermes, ToolFormat::DeepSeekV32}) {
    const std::string text = std::string(tool_calls_marker(f)) + body;
    (void)tool_calls_safe_end(text, f);
    (void)parse_tool_calls(text.substr(std::min(text.size(), tool_calls_start(text, f))), f);
  }
  for (const bool thinking : {false, true}) {
    try {
      (void)ds::tok::dsv32::parse_completion(body, thinking);
    } catch (const ds::Error&) {
    }
  }
  return 0;
}

// SPDX-License-Identifier: MIT
// Fuzzes the OpenAI request parsers (src/server/openai.h) without the HTTP server: the body as the server gets it
// goes through parse_body, then parse_chat and parse_completion (each with response_format), as POST
// /v1/chat/completions and /v1/completions do, with the real DeepSeek-V3 tokenizer and chat template. The same
// bytes are also parsed as model output by the tool-call parsers. A rejection must be an ApiError (the server
// answers it as a 4xx); any other exception would be a 500 and is reported as a finding (abort).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "server/openai.h"

namespace {

using namespace ds::server;

const ParseContext& context() {
  static const ParseContext* pc = [] {
    const ds::tok::Tokenizer& tok = ds::fuzz::v3_tokenizer();
    auto* tmpl = new ds::tok::ChatTemplate(ds::tok::ChatTemplate::from_tokenizer(tok));
    auto* c = new ParseContext;
    c->tok = &tok;
    c->tmpl = tmpl;
    c->tools = tool_support(*tmpl);
    c->model_name = "fuzz";
    c->vocab = int64_t(tok.vocab_size());
    c->ctx = 4096;
    c->limits.max_tokens = 256;
    c->json_vocab = std::make_shared<const TokenVocab>(tok, c->vocab, std::vector<int32_t>{tok.eos_id()});
    return c;
  }();
  return *pc;
}

void one(const std::string& body, bool chat) {
  try {
    const json b = parse_body(body, context().limits.max_json_depth);
    CompletionRequest r = chat ? parse_chat(b, context()) : parse_completion(b, context());
    parse_response_format(nlohmann::ordered_json::parse(body), context(), r);
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
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  one(body, true);
  one(body, false);
  // The same bytes as model output: the tool-call parsers must not crash on anything.
  for (auto f : {ToolFormat::DeepSeekV3, ToolFormat::DeepSeekV31, ToolFormat::Hermes})
    (void)parse_tool_calls(std::string(tool_calls_marker(f)) + body, f);
  return 0;
}

// SPDX-License-Identifier: MIT
// `deepseek run`: chat with a model through its chat format (its Jinja template, or DeepSeek-V3.2's encoding).
// Reasoning (<think>…</think>) is shown apart from the answer. With a MESSAGE: one turn, then exit; without: an interactive chat on stdin (/reset, /exit).
// The KV cache is reused across turns: only the tokens after the longest common prefix are computed.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "apps/deepseek/cli_common.h"
#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "base/timer.h"
#include "runtime/session.h"
#include "runtime/speculative.h"
#include "runtime/world.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/reasoning.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace ds::app {

namespace {

struct Display {
  bool tty = isatty(1);
  bool in_reasoning = false, any_reasoning = false, any_answer = false;
  void reasoning(const std::string& s) {
    if (s.empty()) return;
    if (!any_reasoning) std::fputs(tty ? "\x1b[2m[thinking]\n" : "[thinking]\n", stdout);
    any_reasoning = in_reasoning = true;
    std::fputs(s.c_str(), stdout);
    std::fflush(stdout);
  }
  void answer(std::string s) {
    // The blank lines R1-style models write after </think> are not part of the answer (DeepSeek's API drops them too).
    if (!any_answer) s.erase(0, s.find_first_not_of(" \r\n"));
    if (s.empty()) return;
    if (!any_answer) {
      if (any_reasoning) std::fputs(tty ? "\x1b[0m\n[answer]\n" : "\n[answer]\n", stdout);
      any_answer = true;
      in_reasoning = false;
    }
    std::fputs(s.c_str(), stdout);
    std::fflush(stdout);
  }
  void end() { std::fputs(tty && in_reasoning ? "\x1b[0m\n" : "\n", stdout); std::fflush(stdout); }
};

}  // namespace

int cmd_run(int argc, char** argv) {
  CLI::App app{"Chat with a model through its chat template (or DeepSeek-V3.2's encoding); reasoning is shown apart "
               "from the answer. "
               "Without MESSAGE, an interactive chat (/reset clears the conversation, /exit or Ctrl-D quits).",
               "deepseek run"};
  std::string model, message, system, chat_format = "auto";
  int64_t n = 1024;
  bool think = false, no_think = false;
  ComputeFlags cf;
  SamplingFlags sf;
  app.add_option("-m,--model", model, "checkpoint folder with tokenizer.json and a chat template, or a .gguf file "
                 "(its embedded tokenizer and tokenizer.chat_template unless a tokenizer.json sits beside it)")
      ->required();
  app.add_option("message", message, "one message to answer (omit for an interactive chat)");
  app.add_option("-s,--system", system, "system prompt");
  app.add_option("-n,--n-predict", n, "most tokens per answer")->capture_default_str();
  app.add_flag("--thinking", think, "V3.1-style templates and V3.2: reasoning mode on");
  app.add_flag("--no-thinking", no_think, "V3.1-style templates and V3.2: reasoning mode off (V3.2's default)");
  app.add_option("--chat-format", chat_format, "auto (the tokenizer's chat template; without one, DeepSeek-V3.2's "
                 "encoding for a deepseek_v32 model), jinja, or dsv32 (V3.2's encoding with any tokenizer)")
      ->check(CLI::IsMember({"auto", "jinja", "dsv32"}))
      ->capture_default_str();
  cf.add(app);
  cf.add_draft(app);
  sf.add(app);
  CLI11_PARSE(app, argc, argv);
  DS_CHECK(!(think && no_think), "--thinking and --no-thinking exclude each other");
  DS_CHECK(rt::world().size() == 1, "run reads the conversation from the terminal, which only rank 0 of ",
           rt::world().size(), " processes has: use `serve` (or generate) across processes");
  const rt::EngineOptions eo = cf.engine_options();  // flag errors before the tokenizer and the weights load
  std::optional<tok::Tokenizer> found = tok::try_load_tokenizer(model);
  DS_CHECK(found, model, tok::is_gguf_file(model)
                             ? ": the GGUF file carries no tokenizer and no tokenizer.json sits beside it, so there is "
                               "no chat template to talk through (use `deepseek generate --tokens`)"
                             : ": no tokenizer.json, so there is no chat template to talk through (use `deepseek "
                               "generate --tokens`)");
  const tok::Tokenizer tokenizer = std::move(*found);
  const std::optional<tok::ChatFormat> fmt =
      tok::ChatFormat::select(tokenizer, tok::read_model_type(model), chat_format);
  DS_CHECK(fmt, model,
           tok::is_gguf_file(model) ? ": the tokenizer has no chat template (tokenizer.chat_template in the GGUF, or "
                                      "chat_template in a tokenizer_config.json beside it); --chat-format dsv32 uses "
                                      "DeepSeek-V3.2's encoding"
                                    : "/tokenizer_config.json has no chat_template (and config.json's model_type is "
                                      "not deepseek_v32); --chat-format dsv32 uses DeepSeek-V3.2's encoding");
  const rt::SamplingParams sp = sf.params(model);
  auto e = rt::Engine::load(model, eo);
  rt::Session s(*e, cf.ctx > 0 ? cf.ctx : e->default_ctx());
  rt::Sampler sampler(sp);
  std::vector<int32_t> eos = e->eos_ids();
  if (tokenizer.eos_id() >= 0) eos.push_back(tokenizer.eos_id());

  nlohmann::json messages = nlohmann::json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  tok::ChatOptions co;
  co.add_generation_prompt = true;
  if (think || no_think) co.thinking = think;

  auto turn = [&](const std::string& user) {
    messages.push_back({{"role", "user"}, {"content", user}});
    const tok::RenderedPrompt rp = fmt->render(messages, co);
    const std::vector<int32_t> prompt = tok::encode_prompt(tokenizer, rp);
    // Reuse the cached prefix shared with the previous turn.
    const auto& hist = s.history();
    size_t common = 0;
    while (common < hist.size() && common < prompt.size() && hist[common] == prompt[common]) ++common;
    if (common == prompt.size()) --common;  // at least one token to compute the next logits from
    if (common < hist.size()) {
      std::vector<int32_t> keep(prompt.begin(), prompt.begin() + common);
      s.reset();
      if (!keep.empty()) s.prefill(keep);
    }
    DS_CHECK(int64_t(prompt.size()) + 1 < s.capacity(), "the conversation (", prompt.size(),
             " tokens) no longer fits the context of ", s.capacity(), " tokens; use /reset or a larger --ctx");
    rt::SpecStream stream(s, sampler, cf.draft);
    stream.prefill(std::vector<int32_t>(prompt.begin() + common, prompt.end()));
    tok::ReasoningParser rparse(tokenizer, tok::prompt_opens_reasoning(rp.text));
    Display d;
    std::string answer;
    Timer t;
    int64_t produced = 0;
    std::vector<int32_t> step;
    for (bool done = false; !done && produced < n && stream.room() > 1;) {
      step.clear();
      stream.next(&step, n - produced);
      for (int32_t next : step) {
        if (std::find(eos.begin(), eos.end(), next) != eos.end()) {
          done = true;
          break;
        }
        ++produced;
        const tok::ReasoningDelta delta = rparse.push(next);
        d.reasoning(delta.reasoning);
        d.answer(delta.content);
        answer += delta.content;
      }
    }
    const tok::ReasoningDelta rest = rparse.flush();
    d.reasoning(rest.reasoning);
    d.answer(rest.content);
    answer += rest.content;
    d.end();
    if (cf.verbose) {
      std::fprintf(stderr, "[%lld tokens, %.1f tok/s]\n", (long long)produced, double(produced) / t.seconds());
      print_spec_stats(stream.stats());
    }
    messages.push_back({{"role", "assistant"}, {"content", answer}});
  };

  if (!message.empty()) {
    turn(message);
    return 0;
  }
  const bool tty = isatty(0);
  std::string line;
  while (true) {
    if (tty) std::fputs("> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      messages = nlohmann::json::array();
      if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
      s.reset();
      continue;
    }
    if (line.empty()) continue;
    turn(line);
  }
  return 0;
}

}  // namespace ds::app

// SPDX-License-Identifier: MIT
// `deepseek template`: renders a conversation with the model's chat template (exactly as Hugging Face
// apply_chat_template), or prints its token ids with special tokens parsed only in the template scaffolding.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace ds::app {

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  DS_CHECK(f.good(), path, ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

int cmd_template(int argc, char** argv) {
  CLI::App app{"Render a conversation with the model's chat template (tokenizer_config.json chat_template, or a GGUF's\n"
               "tokenizer.chat_template) and print the prompt. FILE.json holds a JSON array of messages {role, content,\n"
               "tool_calls, ...} or an object with \"messages\" (and optionally \"tools\"). With --ids, prints the prompt's\n"
               "token ids instead: special tokens are parsed only in the template's own text, never inside message\n"
               "content (unless --parse-special-in-content).",
               "deepseek template"};
  std::string model, messages_path, template_path, thinking;
  bool add_gen = false, ids = false, parse_content = false;
  app.add_option("--model", model, "model folder with tokenizer.json and tokenizer_config.json, or a .gguf file (its "
                 "embedded tokenizer and tokenizer.chat_template unless a tokenizer.json sits beside it)")
      ->required();
  app.add_option("--messages", messages_path, "JSON file with the conversation")->required();
  app.add_flag("--add-generation-prompt", add_gen, "end with the assistant prefix so the model answers next");
  app.add_option("--thinking", thinking, "hybrid templates (V3.1): on|off; default: the template's own default")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--template", template_path, "use this Jinja file instead of the model's chat_template");
  app.add_flag("--ids", ids, "print token ids (JSON array) instead of text");
  app.add_flag("--parse-special-in-content", parse_content,
               "with --ids: tokenize the whole prompt with special parsing (Hugging Face behaviour, allows injection)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const tok::Tokenizer tk = tok::load_tokenizer(model);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(slurp(messages_path));
  } catch (const nlohmann::json::exception& e) {
    fail(messages_path, ": invalid JSON: ", e.what());
  }
  tok::ChatOptions opt;
  opt.add_generation_prompt = add_gen;
  if (!thinking.empty()) opt.thinking = thinking == "on";
  nlohmann::json messages = doc;
  if (doc.is_object()) {
    DS_CHECK(doc.contains("messages"), messages_path, ": expected an array of messages or an object with \"messages\"");
    messages = doc["messages"];
    if (doc.contains("tools")) opt.tools = doc["tools"];
  }
  const tok::ChatTemplate tmpl = template_path.empty()
                                     ? tok::ChatTemplate::from_tokenizer(tk)
                                     : tok::ChatTemplate(slurp(template_path), tk.bos_token(), tk.eos_token());
  const tok::RenderedPrompt p = tmpl.render(messages, opt);
  if (ids) {
    const auto v = tok::encode_prompt(tk, p, parse_content ? tok::ContentSpecials::Parse : tok::ContentSpecials::AsText);
    std::string s = "[";
    for (size_t k = 0; k < v.size(); ++k) s += (k ? "," : "") + std::to_string(v[k]);
    std::printf("%s]\n", s.c_str());
  } else {
    std::fwrite(p.text.data(), 1, p.text.size(), stdout);
  }
  return 0;
}

}  // namespace ds::app

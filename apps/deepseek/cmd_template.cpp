// SPDX-License-Identifier: MIT
// `deepseek template`: renders a conversation with the model's chat template (exactly as Hugging Face
// apply_chat_template) or DeepSeek-V3.2's encoding (exactly as its encoding_dsv32.py), or prints its token ids with
// special tokens parsed only in the format's own text.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "tokenizer/chat_format.h"
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
               "tokenizer.chat_template) or DeepSeek-V3.2's encoding, and print the prompt. FILE.json holds a JSON\n"
               "array of messages {role, content, tool_calls, ...} or an object with \"messages\" (and optionally\n"
               "\"tools\", and for V3.2 \"response_format\": a schema). With --ids, prints the prompt's token ids instead:\n"
               "special tokens are parsed only in the format's own text, never inside message content (unless\n"
               "--parse-special-in-content).",
               "deepseek template"};
  std::string model, messages_path, template_path, thinking, chat_format = "auto";
  bool add_gen = false, ids = false, parse_content = false;
  app.add_option("--model", model, "model folder with tokenizer.json and tokenizer_config.json, or a .gguf file (its "
                 "embedded tokenizer and tokenizer.chat_template unless a tokenizer.json sits beside it)")
      ->required();
  app.add_option("--messages", messages_path, "JSON file with the conversation")->required();
  app.add_flag("--add-generation-prompt", add_gen, "end with the assistant prefix so the model answers next");
  app.add_option("--thinking", thinking, "hybrid templates (V3.1) and V3.2: on|off; default: the template's own "
                 "default (V3.2: off, its chat mode)")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--chat-format", chat_format, "auto (the tokenizer's chat template; without one, DeepSeek-V3.2's "
                 "encoding when the model folder's config.json says deepseek_v32), jinja, or dsv32 (V3.2's encoding "
                 "with any tokenizer)")
      ->check(CLI::IsMember({"auto", "jinja", "dsv32"}))
      ->capture_default_str();
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
  // Key order kept: tool schemas are printed as written (tojson in templates, json.dumps in V3.2's encoding).
  nlohmann::ordered_json doc;
  try {
    doc = nlohmann::ordered_json::parse(slurp(messages_path));
  } catch (const nlohmann::json::exception& e) {
    fail(messages_path, ": invalid JSON: ", e.what());
  }
  tok::ChatOptions opt;
  opt.add_generation_prompt = add_gen;
  if (!thinking.empty()) opt.thinking = thinking == "on";
  nlohmann::ordered_json messages = doc;
  if (doc.is_object()) {
    DS_CHECK(doc.contains("messages"), messages_path, ": expected an array of messages or an object with \"messages\"");
    messages = doc["messages"];
    if (doc.contains("tools")) opt.tools = doc["tools"];
    if (doc.contains("response_format")) opt.response_format = doc["response_format"];
  }
  DS_CHECK(template_path.empty() || chat_format != "dsv32", "--template and --chat-format dsv32 exclude each other");
  std::optional<tok::ChatFormat> fmt;
  if (!template_path.empty()) fmt.emplace(tok::ChatTemplate(slurp(template_path), tk.bos_token(), tk.eos_token()));
  else fmt = tok::ChatFormat::select(tk, tok::read_model_type(model), chat_format);
  DS_CHECK(fmt, model, ": the tokenizer has no chat template (and the model is not deepseek_v32); use --template FILE "
           "or --chat-format dsv32");
  const tok::RenderedPrompt p = fmt->render(messages, opt);
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

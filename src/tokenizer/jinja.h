// SPDX-License-Identifier: MIT
// A small sandboxed Jinja interpreter covering what chat templates use (if/elif/else, for with loop.* and
// break/continue, set incl. namespace attributes, macros are not supported; expressions with filters,
// tests, slicing, string/dict methods). Rendering follows Hugging Face apply_chat_template: trim_blocks and
// lstrip_blocks on, raise_exception() available. A template inside a model folder is untrusted, so parsing
// and rendering are bounded by Limits and fail with ds::Error instead of running away.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace ds::tok::jinja {

struct Limits {
  size_t max_template_bytes = 1 << 20;
  size_t max_steps = 5'000'000;        // evaluated nodes
  size_t max_depth = 200;              // parse nesting and evaluation recursion
  size_t max_output_bytes = 256u << 20;
};

struct Node;

class Template {
 public:
  explicit Template(const std::string& source, Limits limits = {});
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  // Renders with the given global variables. Text that came from tainted strings stays tainted.
  TString render(const std::vector<std::pair<std::string, Value>>& globals) const;

 private:
  std::unique_ptr<Node> root_;
  Limits limits_;
};

}  // namespace ds::tok::jinja

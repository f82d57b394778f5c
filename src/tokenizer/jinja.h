// SPDX-License-Identifier: MIT
// A small sandboxed Jinja interpreter covering what chat templates use (if/elif/else, for with loop.* and
// break/continue, set incl. namespace attributes, macros are not supported; expressions with filters,
// tests, slicing, string/dict methods). Rendering follows Hugging Face apply_chat_template: trim_blocks and
// lstrip_blocks on, raise_exception() available. A template inside a model folder is untrusted, so parsing
// and rendering are bounded by Limits and fail with ds::Error instead of running away (docs/SECURITY.md):
// nothing but ds::Error escapes the constructor or render() (std::bad_alloc aside, which the budget prevents).
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace ds::tok::jinja {

struct Limits {
  size_t max_template_bytes = 1 << 20;  // also caps the parse tree at max_template_bytes / 16 nodes (>= 1024)
  size_t max_steps = 5'000'000;        // evaluated nodes, plus one per 256 bytes scanned, copied or compared
  size_t max_depth = 200;              // parse nesting and evaluation recursion
  size_t max_output_bytes = 16u << 20; // the rendered text
  // The render budget: bytes of every string, list and dict the render creates, counted cumulatively (temporaries
  // too) and checked before an operation allocates ('x' * N, replace, join, ~, +, range, slices are sized first).
  size_t max_value_bytes = 64u << 20;
  size_t max_value_depth = 64;         // lists/dicts nested deeper are refused (clamped to kMaxValueDepthCap)
  // Set to true from another thread to abandon a render (polled every 1024 steps): it then throws ds::Error.
  const std::atomic<bool>* cancel = nullptr;
};

// What a render used, for callers that size Limits (and for tests of the limits).
struct RenderStats {
  size_t steps = 0;
  size_t value_bytes = 0;
  size_t output_bytes = 0;
};

struct Node;

class Template {
 public:
  explicit Template(const std::string& source, Limits limits = {});
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  // Renders with the given global variables. Text that came from tainted strings stays tainted.
  // Failures (template errors, raise_exception, any limit) throw ds::Error.
  TString render(const std::vector<std::pair<std::string, Value>>& globals, RenderStats* stats = nullptr) const;
  const Limits& limits() const { return limits_; }

 private:
  std::unique_ptr<Node> root_;
  Limits limits_;
};

}  // namespace ds::tok::jinja

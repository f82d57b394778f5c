// SPDX-License-Identifier: MIT
// Values of the sandboxed Jinja interpreter. Strings carry "taint" spans: byte ranges that came from
// caller data (message contents, tool arguments), so a rendered prompt knows which of its bytes are
// template scaffolding (where special tokens may be parsed) and which are user data (where they must not).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ds::tok::jinja {

struct TString {
  std::string s;
  std::vector<std::pair<uint32_t, uint32_t>> taint;  // sorted, disjoint [begin, end) ranges of data bytes

  static TString data(std::string v) {
    TString t{std::move(v), {}};
    if (!t.s.empty()) t.taint.push_back({0, static_cast<uint32_t>(t.s.size())});
    return t;
  }
  void append(const TString& o);
  void append_plain(const std::string& o) { s += o; }
  TString substr(size_t pos, size_t len) const;  // keeps the taint of the bytes it copies
  bool tainted_at(size_t i) const;
};

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace };

// Nesting of values made by JSON input or a template is capped (Limits::max_value_depth, at most this), so the
// recursive destructor, comparison and printing stay shallow whatever the input.
inline constexpr size_t kMaxValueDepthCap = 1000;
inline constexpr size_t kDefaultValueDepth = 64;

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, as Python dicts

struct Value {
  Kind kind = Kind::Undefined;
  bool b = false;
  bool holds_ns = false;  // is a namespace or a container holding one (namespaces cannot hold them: no cycles)
  uint16_t depth = 0;     // container nesting: 0 for scalars and strings, 1 + the deepest element otherwise
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<const TString> str;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // Dict and Namespace (a namespace is a mutable, shared dict)

  static Value none() { Value v; v.kind = Kind::None; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Kind::Int; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Kind::Float; v.f = x; return v; }
  // During a render these charge the render's budget (see Budget below) and refuse containers nested deeper than
  // its max_value_depth; outside one (JSON input, parse-time literals) they only record the shape.
  static Value string(TString s);
  static Value plain(std::string s) { return string(TString{std::move(s), {}}); }
  static Value make_list(List l = {});
  // `counted` = false: not charged to the budget (the per-iteration `loop` object, bounded by the step limit).
  static Value make_dict(Dict d = {}, bool counted = true);

  bool is_undefined() const { return kind == Kind::Undefined; }
  const Value* get(const std::string& key) const;  // dict/namespace member or nullptr
  bool truthy() const;
};

// Converts caller JSON into values. With `as_data`, every string is marked as tainted data. Objects keep the
// order of their keys: an ordered_json keeps the caller's (as Python dicts do, which tojson shows); a plain json
// has already sorted them. JSON nested deeper than max_depth levels throws ds::Error.
Value from_json(const nlohmann::json& j, bool as_data, size_t max_depth = kDefaultValueDepth);
Value from_json(const nlohmann::ordered_json& j, bool as_data, size_t max_depth = kDefaultValueDepth);
// Python-style text of a value, as `{{ v }}` prints it (strings keep their taint).
TString to_text(const Value& v);
// HF's tojson: json.dumps(ensure_ascii=False) with Python's default ", " / ": " separators.
std::string to_json_text(const Value& v);
bool values_equal(const Value& a, const Value& b);
const char* kind_name(Kind k);

// The budget of the render running on this thread (Template::render installs one; see jinja.h Limits). Value
// bytes are counted cumulatively (every string, list and dict a render creates, temporaries included), so the
// budget bounds both peak memory and the copying work; scanning work (searching, comparing) costs steps.
struct Budget {
  size_t max_bytes = 0, max_steps = 0, max_depth = kDefaultValueDepth;
  const std::atomic<bool>* cancel = nullptr;
  size_t bytes = 0, steps = 0, work = 0;  // work: scanned bytes not yet converted to steps
  size_t line = 0;                        // template line of the node being evaluated, for messages
  size_t next_poll = 0;                   // steps at which Limits::cancel is next read
};
Budget* active_budget();
class BudgetScope {  // installs a budget on this thread for its lifetime
 public:
  explicit BudgetScope(Budget& b);
  ~BudgetScope();
  BudgetScope(const BudgetScope&) = delete;
  BudgetScope& operator=(const BudgetScope&) = delete;

 private:
  Budget* prev_;
};
// Throws ds::Error ("... exceeds the render budget of N bytes") if `more` bytes would not fit: called before an
// operation allocates. `what` names the operation.
void check_bytes(size_t more, const char* what);
// Adds bytes to the budget (after check_bytes, or for small allocations), throwing if over.
void charge_bytes(size_t n, const char* what);
// Scanning or copying work of n bytes: one step per kWorkBytesPerStep.
inline constexpr size_t kWorkBytesPerStep = 256;
void charge_work(size_t n);
// One evaluated node at `line` (also polls Limits::cancel).
void charge_step(size_t line);
// What a string of n bytes costs the budget (its bytes plus the object and control block).
inline constexpr size_t kObjectBytes = 64;
inline size_t string_cost(size_t n) { return n > SIZE_MAX - kObjectBytes ? SIZE_MAX : n + kObjectBytes; }

}  // namespace ds::tok::jinja

// SPDX-License-Identifier: MIT
// Jinja values: taint-tracking strings, conversions, Python-like printing and equality (see jinja_value.h).
#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace ds::tok::jinja {

void TString::append(const TString& o) {
  const uint32_t off = static_cast<uint32_t>(s.size());
  s += o.s;
  for (auto [a, b] : o.taint) {
    if (!taint.empty() && taint.back().second == a + off) taint.back().second = b + off;  // merge adjacent
    else taint.push_back({a + off, b + off});
  }
}

TString TString::substr(size_t pos, size_t len) const {
  TString r;
  if (pos >= s.size()) return r;
  len = std::min(len, s.size() - pos);
  r.s = s.substr(pos, len);
  const size_t end = pos + len;
  for (auto [a, b] : taint) {
    const size_t lo = std::max<size_t>(a, pos), hi = std::min<size_t>(b, end);
    if (lo < hi) r.taint.push_back({static_cast<uint32_t>(lo - pos), static_cast<uint32_t>(hi - pos)});
  }
  return r;
}

bool TString::tainted_at(size_t i) const {
  for (auto [a, b] : taint)
    if (i >= a && i < b) return true;
  return false;
}

// ---- The render budget ----

namespace {
thread_local Budget* g_budget = nullptr;

// Printing and comparison recurse along values, whose nesting is capped at creation (plus one namespace level, whose
// attributes may have grown after it was put in a container): this bound is never reached by a valid value.
constexpr int kMaxRecursion = 2 * static_cast<int>(kMaxValueDepthCap) + 8;

[[noreturn]] void over_budget(const Budget& b, size_t more, const char* what) {
  fail("chat template line ", b.line, ": ", what, " (", more, " more bytes after ", b.bytes,
       ") exceeds the render budget of ", b.max_bytes, " bytes");
}

// Shape of a container from its elements; refused when nested deeper than the budget allows.
void set_shape(Value& v, const Value& elem) {
  v.holds_ns = v.holds_ns || elem.holds_ns;
  v.depth = std::max<uint16_t>(v.depth, static_cast<uint16_t>(std::min<size_t>(elem.depth + 1u, 0xFFFF)));
}
void check_depth(const Value& v) {
  if (Budget* b = g_budget)
    DS_CHECK(v.depth <= b->max_depth, "chat template line ", b->line, ": a ", kind_name(v.kind), " nested ", v.depth,
             " levels deep exceeds the limit of ", b->max_depth, " (max_value_depth)");
}
}  // namespace

Budget* active_budget() { return g_budget; }
BudgetScope::BudgetScope(Budget& b) : prev_(g_budget) { g_budget = &b; }
BudgetScope::~BudgetScope() { g_budget = prev_; }

void check_bytes(size_t more, const char* what) {
  Budget* b = g_budget;
  if (b && (more > b->max_bytes || b->bytes > b->max_bytes - more)) over_budget(*b, more, what);
}

void charge_bytes(size_t n, const char* what) {
  Budget* b = g_budget;
  if (!b) return;
  check_bytes(n, what);
  b->bytes += n;
  charge_work(n);
}

void charge_work(size_t n) {
  Budget* b = g_budget;
  if (!b) return;
  b->work += n;
  if (b->work < kWorkBytesPerStep) return;
  b->steps += b->work / kWorkBytesPerStep;
  b->work %= kWorkBytesPerStep;
  DS_CHECK(b->steps <= b->max_steps, "chat template line ", b->line, ": step limit (", b->max_steps, ") exceeded");
}

void charge_step(size_t line) {
  Budget* b = g_budget;
  if (!b) return;
  b->line = line;
  DS_CHECK(++b->steps <= b->max_steps, "chat template line ", line, ": step limit (", b->max_steps, ") exceeded");
  if (b->cancel && b->steps >= b->next_poll) {
    b->next_poll = b->steps + 1024;
    if (b->cancel->load(std::memory_order_relaxed)) fail("chat template line ", line, ": rendering cancelled");
  }
}

// ---- Values ----

Value Value::string(TString s) {
  charge_bytes(string_cost(s.s.size()) + s.taint.size() * sizeof(s.taint[0]), "a string");
  Value v;
  v.kind = Kind::String;
  v.str = std::make_shared<const TString>(std::move(s));
  return v;
}

Value Value::make_list(List l) {
  Value v;
  v.kind = Kind::List;
  v.depth = 1;
  for (const Value& e : l) set_shape(v, e);
  check_depth(v);
  charge_bytes(kObjectBytes + l.size() * sizeof(Value), "a list");
  v.list = std::make_shared<List>(std::move(l));
  return v;
}

Value Value::make_dict(Dict d, bool counted) {
  Value v;
  v.kind = Kind::Dict;
  v.depth = 1;
  size_t keys = 0;
  for (const auto& [k, e] : d) {
    set_shape(v, e);
    keys += k.size();
  }
  if (counted) {
    check_depth(v);
    charge_bytes(kObjectBytes + d.size() * sizeof(d[0]) + keys, "a dict");
  }
  v.dict = std::make_shared<Dict>(std::move(d));
  return v;
}

const Value* Value::get(const std::string& key) const {
  if ((kind != Kind::Dict && kind != Kind::Namespace) || !dict) return nullptr;
  charge_work(dict->size() * 8);
  for (const auto& [k, v] : *dict)
    if (k == key) return &v;
  return nullptr;
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::Undefined: case Kind::None: return false;
    case Kind::Bool: return b;
    case Kind::Int: return i != 0;
    case Kind::Float: return f != 0;
    case Kind::String: return !str->s.empty();
    case Kind::List: return !list->empty();
    case Kind::Dict: return !dict->empty();
    case Kind::Namespace: return true;
  }
  return false;
}

namespace {
template <typename Json>
Value from_json_impl(const Json& j, bool as_data, size_t depth, size_t max_depth) {
  const auto nested = [&] {
    DS_CHECK(depth < max_depth, "chat template input: JSON nested deeper than ", max_depth, " levels");
  };
  switch (j.type()) {
    case Json::value_t::null: return Value::none();
    case Json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case Json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      const uint64_t u = j.template get<uint64_t>();
      // Beyond int64: kept as a float (as a lossy stand-in for Python's big int) rather than wrapped around.
      return u <= static_cast<uint64_t>(INT64_MAX) ? Value::integer(static_cast<int64_t>(u))
                                                   : Value::number(static_cast<double>(u));
    }
    case Json::value_t::number_float: return Value::number(j.template get<double>());
    case Json::value_t::string:
      return as_data ? Value::string(TString::data(j.template get<std::string>()))
                     : Value::plain(j.template get<std::string>());
    case Json::value_t::array: {
      nested();
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json_impl(e, as_data, depth + 1, max_depth));
      return Value::make_list(std::move(l));
    }
    case Json::value_t::object: {
      nested();
      Dict d;
      d.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        d.push_back({it.key(), from_json_impl(it.value(), as_data, depth + 1, max_depth)});
      return Value::make_dict(std::move(d));
    }
    default: return Value::none();
  }
}
}  // namespace

Value from_json(const nlohmann::json& j, bool as_data, size_t max_depth) {
  return from_json_impl(j, as_data, 0, std::min(max_depth, kMaxValueDepthCap));
}
Value from_json(const nlohmann::ordered_json& j, bool as_data, size_t max_depth) {
  return from_json_impl(j, as_data, 0, std::min(max_depth, kMaxValueDepthCap));
}

namespace {
std::string float_text(double f) {
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (std::isnan(f)) return "nan";
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {  // shortest round-trip, like Python's repr
    std::snprintf(buf, sizeof(buf), "%.*g", prec, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

// Printing runs twice: a counting pass, which stops as soon as the text would not fit in the budget, then the real
// one into a buffer reserved to the exact size. A list holding one big string many times prints to far more bytes
// than it holds, so the size must be known before the copy, not after (and the buffer never doubles past it).
struct Writer {
  std::string* out;  // null: count only
  const char* what;
  size_t n = 0;
  void put(std::string_view piece) {
    n += piece.size();
    if (out) out->append(piece);
    else check_bytes(string_cost(n), what);
  }
  void put(char c) { put(std::string_view(&c, 1)); }
};

template <typename Print>
std::string print_twice(const char* what, Print&& print) {
  Writer count{nullptr, what};
  print(count);
  std::string s;
  s.reserve(count.n);
  Writer w{&s, what};
  print(w);
  return s;
}

void py_repr_string(Writer& w, const std::string& s) {
  charge_work(s.size());
  const char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  w.put(q);
  size_t run = 0;  // start of the pending run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const char* esc = c == q ? (q == '"' ? "\\\"" : "\\'") : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : nullptr;
    if (!esc) continue;
    w.put(std::string_view(s).substr(run, i - run));
    w.put(esc);
    run = i + 1;
  }
  w.put(std::string_view(s).substr(run));
  w.put(q);
}

void py_repr(Writer& w, const Value& v, int depth) {
  DS_CHECK(depth < kMaxRecursion, "chat template: value nested too deeply to print");
  switch (v.kind) {
    case Kind::String: py_repr_string(w, v.str->s); return;
    case Kind::List: {
      w.put('[');
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) w.put(", ");
        py_repr(w, (*v.list)[k], depth + 1);
      }
      w.put(']');
      return;
    }
    case Kind::Dict: {
      w.put('{');
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        if (!first) w.put(", ");
        py_repr_string(w, k);
        w.put(": ");
        py_repr(w, x, depth + 1);
        first = false;
      }
      w.put('}');
      return;
    }
    default: w.put(to_text(v).s);
  }
}

// A JSON string as Python's json.dumps(ensure_ascii=False) writes it: ", \ and control characters escaped, the rest
// verbatim. (Ill-formed UTF-8 is first repaired to U+FFFD.)
void json_string(Writer& w, const std::string& raw) {
  charge_work(raw.size());
  std::string repaired;
  if (!utf8_is_valid(raw)) repaired = utf8_sanitize(raw);
  const std::string& s = repaired.empty() ? raw : repaired;
  w.put('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    w.put(std::string_view(s).substr(run, i - run));
    char buf[8];
    switch (c) {
      case '"': w.put("\\\""); break;
      case '\\': w.put("\\\\"); break;
      case '\b': w.put("\\b"); break;
      case '\f': w.put("\\f"); break;
      case '\n': w.put("\\n"); break;
      case '\r': w.put("\\r"); break;
      case '\t': w.put("\\t"); break;
      default: std::snprintf(buf, sizeof(buf), "\\u%04x", c); w.put(buf);
    }
    run = i + 1;
  }
  w.put(std::string_view(s).substr(run));
  w.put('"');
}

void json_text(Writer& w, const Value& v, int depth) {
  DS_CHECK(depth < kMaxRecursion, "chat template: value nested too deeply for tojson");
  switch (v.kind) {
    case Kind::Undefined: case Kind::None: w.put("null"); return;
    case Kind::Bool: w.put(v.b ? "true" : "false"); return;
    case Kind::Int: w.put(std::to_string(v.i)); return;
    case Kind::Float: w.put(float_text(v.f)); return;
    case Kind::String: json_string(w, v.str->s); return;
    case Kind::List: {
      w.put('[');
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) w.put(", ");
        json_text(w, (*v.list)[k], depth + 1);
      }
      w.put(']');
      return;
    }
    case Kind::Dict: case Kind::Namespace: {
      w.put('{');
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        if (!first) w.put(", ");
        json_string(w, k);
        w.put(": ");
        json_text(w, x, depth + 1);
        first = false;
      }
      w.put('}');
      return;
    }
  }
}

bool equal_rec(const Value& a, const Value& b, int depth) {
  DS_CHECK(depth < kMaxRecursion, "chat template: values nested too deeply to compare");
  const auto numeric = [](const Value& v) { return v.kind == Kind::Int || v.kind == Kind::Float || v.kind == Kind::Bool; };
  if (numeric(a) && numeric(b)) {
    if (a.kind != Kind::Float && b.kind != Kind::Float)  // exact for integers beyond 2^53
      return (a.kind == Kind::Int ? a.i : a.b) == (b.kind == Kind::Int ? b.i : b.b);
    const double x = a.kind == Kind::Float ? a.f : a.kind == Kind::Int ? static_cast<double>(a.i) : a.b;
    const double y = b.kind == Kind::Float ? b.f : b.kind == Kind::Int ? static_cast<double>(b.i) : b.b;
    return x == y;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined: case Kind::None: return true;
    case Kind::String:
      charge_work(std::min(a.str->s.size(), b.str->s.size()));
      return a.str->s == b.str->s;
    case Kind::List:
      if (a.list == b.list) return true;
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k) {
        charge_work(sizeof(Value));
        if (!equal_rec((*a.list)[k], (*b.list)[k], depth + 1)) return false;
      }
      return true;
    case Kind::Dict: case Kind::Namespace:  // as Python: same keys, equal values, in any order
      if (a.dict == b.dict) return true;
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, x] : *a.dict) {
        const Value* y = b.get(k);
        if (!y || !equal_rec(x, *y, depth + 1)) return false;
      }
      return true;
    default: return false;
  }
}
}  // namespace

TString to_text(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return {};
    case Kind::None: return {"None", {}};
    case Kind::Bool: return {v.b ? "True" : "False", {}};
    case Kind::Int: return {std::to_string(v.i), {}};
    case Kind::Float: return {float_text(v.f), {}};
    case Kind::String: return *v.str;
    case Kind::Namespace: return {"<Namespace>", {}};
    case Kind::List: case Kind::Dict: {
      // Containers print as Python repr (plain text: a repr is not message data the way a string is).
      return TString{print_twice("printing a value", [&](Writer& w) { py_repr(w, v, 0); }), {}};
    }
  }
  return {};
}

std::string to_json_text(const Value& v) {
  return print_twice("tojson", [&](Writer& w) { json_text(w, v, 0); });
}

bool values_equal(const Value& a, const Value& b) { return equal_rec(a, b, 0); }

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Undefined: return "undefined";
    case Kind::None: return "none";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "string";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "namespace";
  }
  return "?";
}

}  // namespace ds::tok::jinja

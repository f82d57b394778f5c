// SPDX-License-Identifier: MIT
// Values of the sandboxed Jinja interpreter. Strings carry "taint" spans: byte ranges that came from
// caller data (message contents, tool arguments), so a rendered prompt knows which of its bytes are
// template scaffolding (where special tokens may be parsed) and which are user data (where they must not).
#pragma once
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

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace };

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, as Python dicts

struct Value {
  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<const TString> str;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // Dict and Namespace (a namespace is a mutable, shared dict)

  static Value none() { Value v; v.kind = Kind::None; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Kind::Int; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Kind::Float; v.f = x; return v; }
  static Value string(TString s) { Value v; v.kind = Kind::String; v.str = std::make_shared<const TString>(std::move(s)); return v; }
  static Value plain(std::string s) { return string(TString{std::move(s), {}}); }
  static Value make_list(List l = {}) { Value v; v.kind = Kind::List; v.list = std::make_shared<List>(std::move(l)); return v; }
  static Value make_dict(Dict d = {}) { Value v; v.kind = Kind::Dict; v.dict = std::make_shared<Dict>(std::move(d)); return v; }

  bool is_undefined() const { return kind == Kind::Undefined; }
  const Value* get(const std::string& key) const;  // dict/namespace member or nullptr
  bool truthy() const;
};

// Converts caller JSON into values. With `as_data`, every string is marked as tainted data. Objects keep the
// order of their keys: an ordered_json keeps the caller's (as Python dicts do, which tojson shows); a plain json
// has already sorted them.
Value from_json(const nlohmann::json& j, bool as_data);
Value from_json(const nlohmann::ordered_json& j, bool as_data);
// Python-style text of a value, as `{{ v }}` prints it (strings keep their taint).
TString to_text(const Value& v);
// HF's tojson: json.dumps(ensure_ascii=False) with Python's default ", " / ": " separators.
std::string to_json_text(const Value& v, int depth = 0);
bool values_equal(const Value& a, const Value& b);
const char* kind_name(Kind k);

}  // namespace ds::tok::jinja

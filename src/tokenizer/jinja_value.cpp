// SPDX-License-Identifier: MIT
// Jinja values: taint-tracking strings, conversions, Python-like printing and equality (see jinja_value.h).
#include "tokenizer/jinja_value.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "base/error.h"

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

const Value* Value::get(const std::string& key) const {
  if ((kind != Kind::Dict && kind != Kind::Namespace) || !dict) return nullptr;
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
Value from_json_impl(const Json& j, bool as_data) {
  switch (j.type()) {
    case Json::value_t::null: return Value::none();
    case Json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return Value::integer(j.template get<int64_t>());
    case Json::value_t::number_float: return Value::number(j.template get<double>());
    case Json::value_t::string:
      return as_data ? Value::string(TString::data(j.template get<std::string>()))
                     : Value::plain(j.template get<std::string>());
    case Json::value_t::array: {
      List l;
      for (const auto& e : j) l.push_back(from_json_impl(e, as_data));
      return Value::make_list(std::move(l));
    }
    case Json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.push_back({it.key(), from_json_impl(it.value(), as_data)});
      return Value::make_dict(std::move(d));
    }
    default: return Value::none();
  }
}
}  // namespace

Value from_json(const nlohmann::json& j, bool as_data) { return from_json_impl(j, as_data); }
Value from_json(const nlohmann::ordered_json& j, bool as_data) { return from_json_impl(j, as_data); }

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

std::string py_repr_string(const std::string& s) {
  const char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') { out += '\\'; out += c; }
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out + q;
}

std::string py_repr(const Value& v, int depth) {
  DS_CHECK(depth < 64, "template: value nested too deeply");
  switch (v.kind) {
    case Kind::String: return py_repr_string(v.str->s);
    case Kind::List: {
      std::string o = "[";
      for (size_t k = 0; k < v.list->size(); ++k) o += (k ? ", " : "") + py_repr((*v.list)[k], depth + 1);
      return o + "]";
    }
    case Kind::Dict: {
      std::string o = "{";
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        o += (first ? "" : ", ") + py_repr_string(k) + ": " + py_repr(x, depth + 1);
        first = false;
      }
      return o + "}";
    }
    default: return to_text(v).s;
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
      // Containers print as Python repr; their strings are data if the container held data.
      TString t{py_repr(v, 0), {}};
      return t;
    }
  }
  return {};
}

std::string to_json_text(const Value& v, int depth) {
  DS_CHECK(depth < 64, "template: value nested too deeply for tojson");
  switch (v.kind) {
    case Kind::Undefined: case Kind::None: return "null";
    case Kind::Bool: return v.b ? "true" : "false";
    case Kind::Int: return std::to_string(v.i);
    case Kind::Float: return float_text(v.f);
    case Kind::String: return nlohmann::json(v.str->s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    case Kind::List: {
      std::string o = "[";
      for (size_t k = 0; k < v.list->size(); ++k) o += (k ? ", " : "") + to_json_text((*v.list)[k], depth + 1);
      return o + "]";
    }
    case Kind::Dict: case Kind::Namespace: {
      std::string o = "{";
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        o += (first ? "" : ", ") + nlohmann::json(k).dump() + ": " + to_json_text(x, depth + 1);
        first = false;
      }
      return o + "}";
    }
  }
  return "null";
}

bool values_equal(const Value& a, const Value& b) {
  const auto numeric = [](const Value& v) { return v.kind == Kind::Int || v.kind == Kind::Float || v.kind == Kind::Bool; };
  if (numeric(a) && numeric(b)) {
    const double x = a.kind == Kind::Float ? a.f : a.kind == Kind::Int ? static_cast<double>(a.i) : a.b;
    const double y = b.kind == Kind::Float ? b.f : b.kind == Kind::Int ? static_cast<double>(b.i) : b.b;
    return x == y;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined: case Kind::None: return true;
    case Kind::String: return a.str->s == b.str->s;
    case Kind::List:
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!values_equal((*a.list)[k], (*b.list)[k])) return false;
      return true;
    case Kind::Dict: case Kind::Namespace: return a.dict == b.dict || to_json_text(a) == to_json_text(b);
    default: return false;
  }
}

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

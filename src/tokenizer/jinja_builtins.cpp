// SPDX-License-Identifier: MIT
// Operators, filters, tests and methods for the Jinja interpreter (see jinja_builtins.h).
#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace ds::tok::jinja {

namespace {

// Byte offsets of each code point start, plus the end: Python indexes strings by code point.
std::vector<size_t> cp_offsets(const std::string& s) {
  std::vector<size_t> off;
  size_t i = 0;
  while (i < s.size()) {
    off.push_back(i);
    utf8_next(s, i);
  }
  off.push_back(s.size());
  return off;
}

bool is_py_space(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

const std::string& want_str(const Value& v, const char* what, size_t line) {
  DS_CHECK(v.kind == Kind::String, "template line ", line, ": ", what, " expects a string, got ", kind_name(v.kind));
  return v.str->s;
}

int64_t want_int(const Value& v, const char* what, size_t line) {
  if (v.kind == Kind::Bool) return v.b;
  DS_CHECK(v.kind == Kind::Int, "template line ", line, ": ", what, " expects an integer, got ", kind_name(v.kind));
  return v.i;
}

Value strip(const TString& s, const Value* chars, bool left, bool right) {
  std::vector<uint32_t> set;
  if (chars && chars->kind == Kind::String) {
    size_t i = 0;
    while (i < chars->str->s.size()) set.push_back(utf8_next(chars->str->s, i));
  }
  const auto strip_it = [&](uint32_t c) {
    return set.empty() && !(chars && chars->kind == Kind::String) ? is_py_space(c)
                                                                  : std::find(set.begin(), set.end(), c) != set.end();
  };
  const auto off = cp_offsets(s.s);
  size_t a = 0, b = off.size() - 1;
  const auto cp_at = [&](size_t k) { size_t i = off[k]; return utf8_next(s.s, i); };
  if (left) while (a < b && strip_it(cp_at(a))) ++a;
  if (right) while (b > a && strip_it(cp_at(b - 1))) --b;
  return Value::string(s.substr(off[a], off[b] - off[a]));
}

Value split(const TString& s, const Value* sep, int64_t maxsplit, size_t line) {
  List parts;
  if (!sep || sep->kind == Kind::None) {  // whitespace split, empty strings dropped
    const auto off = cp_offsets(s.s);
    size_t k = 0;
    const size_t n = off.size() - 1;
    const auto cp_at = [&](size_t j) { size_t i = off[j]; return utf8_next(s.s, i); };
    while (k < n) {
      while (k < n && is_py_space(cp_at(k))) ++k;
      if (k >= n) break;
      size_t e = k;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        size_t end = n;
        while (end > k && is_py_space(cp_at(end - 1))) --end;
        parts.push_back(Value::string(s.substr(off[k], off[end] - off[k])));
        break;
      }
      while (e < n && !is_py_space(cp_at(e))) ++e;
      parts.push_back(Value::string(s.substr(off[k], off[e] - off[k])));
      k = e;
    }
    return Value::make_list(std::move(parts));
  }
  const std::string& d = want_str(*sep, "split", line);
  DS_CHECK(!d.empty(), "template line ", line, ": split with an empty separator");
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    const size_t f = s.s.find(d, pos);
    if (f == std::string::npos) break;
    parts.push_back(Value::string(s.substr(pos, f - pos)));
    pos = f + d.size();
  }
  parts.push_back(Value::string(s.substr(pos, std::string::npos)));
  return Value::make_list(std::move(parts));
}

int64_t norm_index(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

}  // namespace

bool has_taint(const Value& v) {
  switch (v.kind) {
    case Kind::String: return !v.str->taint.empty();
    case Kind::List:
      for (const auto& x : *v.list) if (has_taint(x)) return true;
      return false;
    case Kind::Dict: case Kind::Namespace:
      for (const auto& [k, x] : *v.dict) if (has_taint(x)) return true;
      return false;
    default: return false;
  }
}

void set_member(Dict& d, const std::string& key, Value v) {
  for (auto& [k, x] : d)
    if (k == key) { x = std::move(v); return; }
  d.push_back({key, std::move(v)});
}

Value get_attr(const Value& obj, const std::string& name) {
  if (const Value* v = obj.get(name)) return *v;
  return Value();
}

List string_chars(const TString& s) {
  List out;
  const auto off = cp_offsets(s.s);
  for (size_t k = 0; k + 1 < off.size(); ++k) out.push_back(Value::string(s.substr(off[k], off[k + 1] - off[k])));
  return out;
}

Value get_item(const Value& obj, const Value& key, size_t line) {
  if (obj.kind == Kind::Dict || obj.kind == Kind::Namespace) {
    if (key.kind != Kind::String) return Value();
    return get_attr(obj, key.str->s);
  }
  if (obj.kind == Kind::List) {
    const int64_t n = static_cast<int64_t>(obj.list->size());
    const int64_t i = norm_index(want_int(key, "list index", line), n);
    return i >= 0 && i < n ? (*obj.list)[i] : Value();
  }
  if (obj.kind == Kind::String) {
    const List chars = string_chars(*obj.str);
    const int64_t n = static_cast<int64_t>(chars.size());
    const int64_t i = norm_index(want_int(key, "string index", line), n);
    return i >= 0 && i < n ? chars[i] : Value();
  }
  return Value();  // Jinja: subscripting none/numbers yields undefined
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& stepv, size_t line) {
  const int64_t step = stepv.kind == Kind::None ? 1 : want_int(stepv, "slice step", line);
  DS_CHECK(step != 0, "template line ", line, ": slice step cannot be zero");
  List items;
  if (obj.kind == Kind::List) items = *obj.list;
  else if (obj.kind == Kind::String) items = string_chars(*obj.str);
  else fail("template line ", line, ": cannot slice a ", kind_name(obj.kind));
  const int64_t n = static_cast<int64_t>(items.size());
  const auto clampi = [&](const Value& v, int64_t dflt) {
    if (v.kind == Kind::None) return dflt;
    int64_t i = want_int(v, "slice bound", line);
    if (i < 0) i += n;
    return step > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t a = clampi(start, step > 0 ? 0 : n - 1), b = clampi(stop, step > 0 ? n : -1);
  List out;
  for (int64_t i = a; step > 0 ? i < b : i > b; i += step) out.push_back(items[i]);
  if (obj.kind == Kind::List) return Value::make_list(std::move(out));
  TString s;
  for (const auto& c : out) s.append(*c.str);
  return Value::string(std::move(s));
}

Value binary(const std::string& op, const Value& a, const Value& b, size_t line, size_t max_bytes) {
  if (op == "==") return Value::boolean(values_equal(a, b));
  if (op == "!=") return Value::boolean(!values_equal(a, b));
  if (op == "~") {
    TString s = to_text(a);
    s.append(to_text(b));
    return Value::string(std::move(s));
  }
  if (op == "in" || op == "notin") {
    bool r = false;
    if (b.kind == Kind::String) r = b.str->s.find(want_str(a, "'in' on a string", line)) != std::string::npos;
    else if (b.kind == Kind::List) r = std::any_of(b.list->begin(), b.list->end(), [&](const Value& x) { return values_equal(a, x); });
    else if (b.kind == Kind::Dict || b.kind == Kind::Namespace) r = a.kind == Kind::String && b.get(a.str->s);
    else fail("template line ", line, ": 'in' needs a string, list or dict on the right, got ", kind_name(b.kind));
    return Value::boolean(op == "in" ? r : !r);
  }
  const bool num = (a.kind == Kind::Int || a.kind == Kind::Float || a.kind == Kind::Bool) &&
                   (b.kind == Kind::Int || b.kind == Kind::Float || b.kind == Kind::Bool);
  if (op == "+") {
    if (a.kind == Kind::String && b.kind == Kind::String) {
      DS_CHECK(a.str->s.size() + b.str->s.size() <= max_bytes, "template line ", line, ": string too long");
      TString s = *a.str;
      s.append(*b.str);
      return Value::string(std::move(s));
    }
    if (a.kind == Kind::List && b.kind == Kind::List) {
      List l = *a.list;
      l.insert(l.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(l));
    }
  }
  if (op == "*" && a.kind == Kind::String && (b.kind == Kind::Int)) {
    DS_CHECK(b.i <= 0 || a.str->s.size() * static_cast<size_t>(b.i) <= max_bytes, "template line ", line, ": string too long");
    TString s;
    for (int64_t k = 0; k < b.i; ++k) s.append(*a.str);
    return Value::string(std::move(s));
  }
  if (num) {
    const bool flt = a.kind == Kind::Float || b.kind == Kind::Float;
    const double x = a.kind == Kind::Float ? a.f : a.kind == Kind::Int ? static_cast<double>(a.i) : a.b;
    const double y = b.kind == Kind::Float ? b.f : b.kind == Kind::Int ? static_cast<double>(b.i) : b.b;
    const int64_t xi = a.kind == Kind::Int ? a.i : static_cast<int64_t>(x), yi = b.kind == Kind::Int ? b.i : static_cast<int64_t>(y);
    if (op == "<") return Value::boolean(x < y);
    if (op == ">") return Value::boolean(x > y);
    if (op == "<=") return Value::boolean(x <= y);
    if (op == ">=") return Value::boolean(x >= y);
    if (op == "+") return flt ? Value::number(x + y) : Value::integer(xi + yi);
    if (op == "-") return flt ? Value::number(x - y) : Value::integer(xi - yi);
    if (op == "*") return flt ? Value::number(x * y) : Value::integer(xi * yi);
    DS_CHECK(y != 0, "template line ", line, ": division by zero");
    if (op == "/") return Value::number(x / y);
    if (op == "//") return flt ? Value::number(std::floor(x / y)) : Value::integer(static_cast<int64_t>(std::floor(x / y)));
    if (op == "%") return flt ? Value::number(x - y * std::floor(x / y)) : Value::integer(((xi % yi) + yi) % yi);
  }
  if (a.kind == Kind::String && b.kind == Kind::String) {
    const int c = a.str->s.compare(b.str->s);
    if (op == "<") return Value::boolean(c < 0);
    if (op == ">") return Value::boolean(c > 0);
    if (op == "<=") return Value::boolean(c <= 0);
    if (op == ">=") return Value::boolean(c >= 0);
  }
  fail("template line ", line, ": unsupported operand types for ", op, ": ", kind_name(a.kind), " and ", kind_name(b.kind));
}

Value apply_filter(const std::string& f, const Value& v, const std::vector<Value>& args, size_t line) {
  if (f == "length" || f == "count") {
    if (v.kind == Kind::String) return Value::integer(static_cast<int64_t>(cp_offsets(v.str->s).size() - 1));
    if (v.kind == Kind::List) return Value::integer(static_cast<int64_t>(v.list->size()));
    if (v.kind == Kind::Dict) return Value::integer(static_cast<int64_t>(v.dict->size()));
    fail("template line ", line, ": length of a ", kind_name(v.kind));
  }
  if (f == "tojson") {
    std::string j = to_json_text(v);
    return Value::string(has_taint(v) ? TString::data(std::move(j)) : TString{std::move(j), {}});
  }
  if (f == "trim") return v.kind == Kind::String ? strip(*v.str, args.empty() ? nullptr : &args[0], true, true) : v;
  if (f == "string") return Value::string(to_text(v));
  if (f == "safe" || f == "e" || f == "escape") return v;  // autoescape is off for chat templates
  if (f == "default" || f == "d") {
    const bool boolean = args.size() > 1 && args[1].truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return args.empty() ? Value::plain("") : args[0];
    return v;
  }
  if (f == "first" || f == "last") {
    List l = v.kind == Kind::String ? string_chars(*v.str) : v.kind == Kind::List ? *v.list : List{};
    if (l.empty()) return Value();
    return f == "first" ? l.front() : l.back();
  }
  if (f == "list") {
    if (v.kind == Kind::List) return v;
    if (v.kind == Kind::String) return Value::make_list(string_chars(*v.str));
    List l;
    if (v.kind == Kind::Dict) for (const auto& kv : *v.dict) l.push_back(Value::plain(kv.first));
    return Value::make_list(std::move(l));
  }
  if (f == "join") {
    DS_CHECK(v.kind == Kind::List, "template line ", line, ": join expects a list");
    TString out, sep = args.empty() ? TString{} : to_text(args[0]);
    for (size_t k = 0; k < v.list->size(); ++k) {
      if (k) out.append(sep);
      out.append(to_text((*v.list)[k]));
    }
    return Value::string(std::move(out));
  }
  if (f == "upper" || f == "lower") return call_method(v, f, {}, line);
  if (f == "items") return call_method(v, "items", {}, line);
  if (f == "reverse") {
    if (v.kind == Kind::String) { List c = string_chars(*v.str); std::reverse(c.begin(), c.end()); TString s; for (auto& x : c) s.append(*x.str); return Value::string(s); }
    DS_CHECK(v.kind == Kind::List, "template line ", line, ": reverse expects a list or string");
    List l = *v.list;
    std::reverse(l.begin(), l.end());
    return Value::make_list(std::move(l));
  }
  if (f == "int") {
    if (v.kind == Kind::Int) return v;
    if (v.kind == Kind::Float) return Value::integer(static_cast<int64_t>(v.f));
    if (v.kind == Kind::String) { try { return Value::integer(std::stoll(v.str->s)); } catch (...) {} }
    return Value::integer(0);
  }
  fail("template line ", line, ": unknown filter '", f, "'");
}

bool apply_test(const std::string& t, const Value& v, const std::vector<Value>& args, size_t line) {
  if (t == "defined") return !v.is_undefined();
  if (t == "undefined") return v.is_undefined();
  if (t == "none") return v.kind == Kind::None;
  if (t == "string") return v.kind == Kind::String;
  if (t == "number") return v.kind == Kind::Int || v.kind == Kind::Float;
  if (t == "integer") return v.kind == Kind::Int;
  if (t == "float") return v.kind == Kind::Float;
  if (t == "boolean") return v.kind == Kind::Bool;
  if (t == "true") return v.kind == Kind::Bool && v.b;
  if (t == "false") return v.kind == Kind::Bool && !v.b;
  if (t == "mapping") return v.kind == Kind::Dict || v.kind == Kind::Namespace;
  if (t == "iterable") return v.kind == Kind::List || v.kind == Kind::Dict || v.kind == Kind::String;
  if (t == "sequence") return v.kind == Kind::List || v.kind == Kind::String || v.kind == Kind::Dict;
  if (t == "callable") return false;
  if (t == "odd" || t == "even") return (want_int(v, "odd/even", line) % 2 != 0) == (t == "odd");
  DS_CHECK(!args.empty(), "template line ", line, ": unknown test '", t, "'");
  if (t == "equalto" || t == "eq" || t == "sameas") return values_equal(v, args[0]);
  if (t == "ne") return !values_equal(v, args[0]);
  if (t == "in") return binary("in", v, args[0], line, 0).b;
  fail("template line ", line, ": unknown test '", t, "'");
}

Value call_method(const Value& obj, const std::string& m, const std::vector<Value>& args, size_t line) {
  if (obj.kind == Kind::String) {
    const TString& s = *obj.str;
    if (m == "split") {
      const int64_t maxsplit = args.size() > 1 ? want_int(args[1], "split maxsplit", line) : -1;
      return split(s, args.empty() ? nullptr : &args[0], maxsplit, line);
    }
    if (m == "strip") return strip(s, args.empty() ? nullptr : &args[0], true, true);
    if (m == "lstrip") return strip(s, args.empty() ? nullptr : &args[0], true, false);
    if (m == "rstrip") return strip(s, args.empty() ? nullptr : &args[0], false, true);
    if (m == "startswith" || m == "endswith") {
      DS_CHECK(!args.empty(), "template line ", line, ": ", m, " needs an argument");
      const std::string& p = want_str(args[0], m.c_str(), line);
      const bool r = p.size() <= s.s.size() &&
                     (m == "startswith" ? s.s.compare(0, p.size(), p) == 0 : s.s.compare(s.s.size() - p.size(), p.size(), p) == 0);
      return Value::boolean(r);
    }
    if (m == "upper" || m == "lower") {  // ASCII case mapping (enough for role names and keywords)
      TString r = s;
      for (char& c : r.s)
        if (static_cast<unsigned char>(c) < 0x80) c = m == "upper" ? static_cast<char>(std::toupper(c)) : static_cast<char>(std::tolower(c));
      return Value::string(std::move(r));
    }
    if (m == "replace") {
      DS_CHECK(args.size() >= 2, "template line ", line, ": replace(old, new)");
      const std::string& from = want_str(args[0], "replace", line);
      DS_CHECK(!from.empty(), "template line ", line, ": replace with an empty pattern is not supported");
      TString out;
      size_t pos = 0, f;
      while ((f = s.s.find(from, pos)) != std::string::npos) {
        out.append(s.substr(pos, f - pos));
        out.append(*args[1].str);
        pos = f + from.size();
      }
      out.append(s.substr(pos, std::string::npos));
      return Value::string(std::move(out));
    }
    fail("template line ", line, ": unknown string method '", m, "'");
  }
  if (obj.kind == Kind::Dict || obj.kind == Kind::Namespace) {
    if (m == "get") {
      DS_CHECK(!args.empty() && args[0].kind == Kind::String, "template line ", line, ": get(key[, default])");
      const Value* v = obj.get(args[0].str->s);
      return v ? *v : args.size() > 1 ? args[1] : Value::none();
    }
    if (m == "items" || m == "keys" || m == "values") {
      List l;
      for (const auto& [k, v] : *obj.dict) {
        if (m == "items") l.push_back(Value::make_list({Value::plain(k), v}));
        else l.push_back(m == "keys" ? Value::plain(k) : v);
      }
      return Value::make_list(std::move(l));
    }
  }
  fail("template line ", line, ": unknown method '", m, "' on a ", kind_name(obj.kind));
}

Value make_range(const std::vector<Value>& args, size_t line) {
  DS_CHECK(!args.empty() && args.size() <= 3, "template line ", line, ": range(stop) or range(start, stop[, step])");
  int64_t a = 0, b, s = 1;
  if (args.size() == 1) b = want_int(args[0], "range", line);
  else { a = want_int(args[0], "range", line); b = want_int(args[1], "range", line); }
  if (args.size() == 3) s = want_int(args[2], "range", line);
  DS_CHECK(s != 0, "template line ", line, ": range step cannot be zero");
  List l;
  for (int64_t i = a; s > 0 ? i < b : i > b; i += s) {
    DS_CHECK(l.size() < 1'000'000, "template line ", line, ": range too long");
    l.push_back(Value::integer(i));
  }
  return Value::make_list(std::move(l));
}

}  // namespace ds::tok::jinja

// SPDX-License-Identifier: MIT
// Operators, filters, tests and methods for the Jinja interpreter (see jinja_builtins.h).
#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace ds::tok::jinja {

namespace {

// Python indexes strings by code point; these walk the UTF-8 without building per-character tables (a 60 MB string
// must not become a 500 MB offset table), and charge the bytes they scan as work.
// Decoding UTF-8 is slower than searching bytes: a walk costs this many work bytes per byte.
constexpr size_t kDecodeCost = 16;

size_t cp_count(const std::string& s) {
  charge_work(s.size() * kDecodeCost);
  size_t n = 0, i = 0;
  while (i < s.size()) {
    utf8_next(s, i);
    ++n;
  }
  return n;
}

// Byte offsets of each code point start, plus the end. The table costs 8 bytes a byte: charged to the budget.
std::vector<size_t> cp_offsets(const std::string& s) {
  charge_bytes((s.size() + 1) * sizeof(size_t), "a string's character table");
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

// a * b for sizes, refusing (rather than wrapping) on overflow: the result then exceeds any budget.
size_t size_mul(size_t a, size_t b) {
  size_t r;
  return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}
size_t size_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

Value strip(const TString& s, const Value* chars, bool left, bool right) {
  std::vector<uint32_t> set;
  const bool custom = chars && chars->kind == Kind::String;
  if (custom) {
    size_t i = 0;
    while (i < chars->str->s.size()) set.push_back(utf8_next(chars->str->s, i));
  }
  const auto strip_it = [&](uint32_t c) {
    return custom ? std::find(set.begin(), set.end(), c) != set.end() : is_py_space(c);
  };
  // One forward pass: a = end of the leading run to strip, b = end of the last code point kept.
  charge_work(s.s.size() * (kDecodeCost + set.size() / 16));
  size_t a = 0, b = 0, i = 0;
  bool leading = left;
  while (i < s.s.size()) {
    const size_t at = i;
    const uint32_t c = utf8_next(s.s, i);
    const bool strip_c = strip_it(c);
    if (leading && strip_c) { a = i; continue; }
    if (leading) a = at;
    leading = false;
    if (!right) { b = s.s.size(); break; }
    if (!strip_c) b = i;
  }
  if (b < a) b = a;
  return Value::string(s.substr(a, b - a));
}

// Two passes: the first counts the parts, so the list and its strings are sized (and refused) before any is made.
Value split(const TString& s, const Value* sep, int64_t maxsplit, size_t line) {
  const bool ws = !sep || sep->kind == Kind::None;  // whitespace split, empty strings dropped
  const std::string* d = ws ? nullptr : &want_str(*sep, "split", line);
  DS_CHECK(ws || !d->empty(), "template line ", line, ": split with an empty separator");
  charge_work(s.s.size() * (ws ? kDecodeCost : 1));
  List parts;
  size_t count = 0;
  const auto emit = [&](bool build, size_t b, size_t e) {
    if (build) parts.push_back(Value::string(s.substr(b, e - b)));
    ++count;
  };
  const auto walk = [&](bool build) {
    count = 0;
    const size_t n = s.s.size();
    const auto room = [&] { return maxsplit < 0 || static_cast<int64_t>(count) < maxsplit; };
    if (!ws) {
      size_t pos = 0, f;
      while (room() && (f = s.s.find(*d, pos)) != std::string::npos) {
        emit(build, pos, f);
        pos = f + d->size();
      }
      emit(build, pos, n);
      return;
    }
    size_t i = 0;
    while (i < n) {
      size_t j = i;
      if (is_py_space(utf8_next(s.s, j))) { i = j; continue; }
      const size_t start = i;
      size_t e = start;
      if (!room()) {  // the rest, right-stripped
        for (size_t k = start; k < n;) if (!is_py_space(utf8_next(s.s, k))) e = k;
        emit(build, start, e);
        return;
      }
      while (i < n) {
        j = i;
        if (is_py_space(utf8_next(s.s, j))) break;
        i = e = j;
      }
      emit(build, start, e);
    }
  };
  walk(false);
  check_bytes(size_add(size_mul(count, sizeof(Value) + kObjectBytes), s.s.size()), "split");
  parts.reserve(count);
  walk(true);
  return Value::make_list(std::move(parts));
}

// The code point at Python index i (negative counts from the end) as [begin, end) bytes; false if out of range.
bool cp_at(const std::string& s, int64_t i, size_t& begin, size_t& end) {
  if (i < 0) {
    const int64_t n = static_cast<int64_t>(cp_count(s));
    if (i < -n) return false;
    i += n;
  }
  charge_work(s.size() * kDecodeCost);
  size_t p = 0;
  for (int64_t k = 0; p < s.size(); ++k) {
    const size_t at = p;
    utf8_next(s, p);
    if (k == i) { begin = at; end = p; return true; }
  }
  return false;
}

Value char_value(const TString& s, int64_t i) {
  size_t b, e;
  return cp_at(s.s, i, b, e) ? Value::string(s.substr(b, e - b)) : Value();
}

// Python's floor division and modulo on int64, refusing overflow (INT64_MIN // -1) and zero divisors.
[[noreturn]] void int_overflow(const char* op, int64_t a, int64_t b, size_t line) {
  fail("template line ", line, ": integer overflow in ", a, " ", op, " ", b,
       " (the result does not fit in 64 bits; Jinja's big integers are not supported)");
}

int64_t int_pow(int64_t base, int64_t e, size_t line) {
  const int64_t b0 = base, e0 = e;
  int64_t r = 1;
  while (e > 0) {
    if ((e & 1) && __builtin_mul_overflow(r, base, &r)) int_overflow("**", b0, e0, line);
    e >>= 1;
    if (e && __builtin_mul_overflow(base, base, &base)) int_overflow("**", b0, e0, line);
  }
  return r;
}

Value int_binary(const std::string& op, int64_t x, int64_t y, size_t line) {
  int64_t r = 0;
  if (op == "+") { if (__builtin_add_overflow(x, y, &r)) int_overflow("+", x, y, line); return Value::integer(r); }
  if (op == "-") { if (__builtin_sub_overflow(x, y, &r)) int_overflow("-", x, y, line); return Value::integer(r); }
  if (op == "*") { if (__builtin_mul_overflow(x, y, &r)) int_overflow("*", x, y, line); return Value::integer(r); }
  if (op == "**") {
    if (y >= 0) return Value::integer(int_pow(x, y, line));
    DS_CHECK(x != 0, "template line ", line, ": 0 cannot be raised to a negative power (division by zero)");
    return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
  }
  if (op == "/") {
    DS_CHECK(y != 0, "template line ", line, ": division by zero");
    return Value::number(static_cast<double>(x) / static_cast<double>(y));
  }
  if (op == "//") {
    DS_CHECK(y != 0, "template line ", line, ": integer division by zero");
    if (x == INT64_MIN && y == -1) int_overflow("//", x, y, line);
    int64_t q = x / y;
    if (x % y != 0 && ((x < 0) != (y < 0))) --q;
    return Value::integer(q);
  }
  if (op == "%") {
    DS_CHECK(y != 0, "template line ", line, ": integer modulo by zero");
    if (y == -1) return Value::integer(0);  // INT64_MIN % -1 traps in C++; Python gives 0
    int64_t m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value::integer(m);
  }
  if (op == "<") return Value::boolean(x < y);
  if (op == ">") return Value::boolean(x > y);
  if (op == "<=") return Value::boolean(x <= y);
  if (op == ">=") return Value::boolean(x >= y);
  fail("template line ", line, ": unsupported operator ", op, " on integers");
}

Value float_binary(const std::string& op, double x, double y, size_t line) {
  if (op == "<") return Value::boolean(x < y);
  if (op == ">") return Value::boolean(x > y);
  if (op == "<=") return Value::boolean(x <= y);
  if (op == ">=") return Value::boolean(x >= y);
  if (op == "+") return Value::number(x + y);
  if (op == "-") return Value::number(x - y);
  if (op == "*") return Value::number(x * y);
  if (op == "**") {
    DS_CHECK(!(x == 0 && y < 0), "template line ", line, ": 0.0 cannot be raised to a negative power");
    return Value::number(std::pow(x, y));
  }
  DS_CHECK(y != 0, "template line ", line, ": float division by zero");
  if (op == "/") return Value::number(x / y);
  if (op == "//") return Value::number(std::floor(x / y));
  if (op == "%") {  // Python: the result takes the divisor's sign
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value::number(m);
  }
  fail("template line ", line, ": unsupported operator ", op, " on numbers");
}

// Number of items of range(a, b, step) / a slice walk, computed without overflow.
uint64_t walk_count(int64_t a, int64_t b, int64_t step) {
  const __int128 d = step > 0 ? static_cast<__int128>(b) - a : static_cast<__int128>(a) - b;
  if (d <= 0) return 0;
  const __int128 s = step > 0 ? static_cast<__int128>(step) : -static_cast<__int128>(step);
  return static_cast<uint64_t>((d + s - 1) / s);
}

const TString& text_ref(const Value& v, TString& tmp) {
  if (v.kind == Kind::String) return *v.str;
  tmp = to_text(v);
  return tmp;
}

}  // namespace

bool has_taint(const Value& v) {
  switch (v.kind) {
    case Kind::String: return !v.str->taint.empty();
    case Kind::List:
      charge_work(v.list->size() * sizeof(Value));
      for (const auto& x : *v.list) if (has_taint(x)) return true;
      return false;
    case Kind::Dict: case Kind::Namespace:
      charge_work(v.dict->size() * sizeof(Value));
      for (const auto& [k, x] : *v.dict) if (has_taint(x)) return true;
      return false;
    default: return false;
  }
}

void set_member(Dict& d, const std::string& key, Value v) {
  charge_work(d.size() * 8);
  for (auto& [k, x] : d)
    if (k == key) { x = std::move(v); return; }
  charge_bytes(sizeof(d[0]) + key.size(), "a dict entry");
  d.push_back({key, std::move(v)});
}

Value get_attr(const Value& obj, const std::string& name) {
  if (const Value* v = obj.get(name)) return *v;
  return Value();
}

List string_chars(const TString& s) {
  const size_t n = cp_count(s.s);
  // Each character becomes a string value: refuse before building them.
  check_bytes(size_mul(n, sizeof(Value) + string_cost(4)), "splitting a string into characters");
  List out;
  out.reserve(n);
  size_t i = 0;
  while (i < s.s.size()) {
    const size_t at = i;
    utf8_next(s.s, i);
    out.push_back(Value::string(s.substr(at, i - at)));
  }
  return out;
}

Value get_item(const Value& obj, const Value& key, size_t line) {
  if (obj.kind == Kind::Dict || obj.kind == Kind::Namespace) {
    if (key.kind != Kind::String) return Value();
    return get_attr(obj, key.str->s);
  }
  if (obj.kind == Kind::List) {
    const int64_t n = static_cast<int64_t>(obj.list->size());
    int64_t i = want_int(key, "list index", line);
    if (i < 0) i += n;  // no overflow: i >= INT64_MIN and n >= 0
    return i >= 0 && i < n ? (*obj.list)[i] : Value();
  }
  if (obj.kind == Kind::String) return char_value(*obj.str, want_int(key, "string index", line));
  return Value();  // Jinja: subscripting none/numbers yields undefined
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& stepv, size_t line) {
  const int64_t step = stepv.kind == Kind::None ? 1 : want_int(stepv, "slice step", line);
  DS_CHECK(step != 0, "template line ", line, ": slice step cannot be zero");
  DS_CHECK(obj.kind == Kind::List || obj.kind == Kind::String, "template line ", line, ": cannot slice a ",
           kind_name(obj.kind));
  std::vector<size_t> off;  // strings: code point offsets
  if (obj.kind == Kind::String) off = cp_offsets(obj.str->s);
  const int64_t n = obj.kind == Kind::List ? static_cast<int64_t>(obj.list->size()) : static_cast<int64_t>(off.size()) - 1;
  const auto clampi = [&](const Value& v, int64_t dflt) {
    if (v.kind == Kind::None) return dflt;
    int64_t i = want_int(v, "slice bound", line);
    if (i < 0) i += n;
    return step > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t a = clampi(start, step > 0 ? 0 : n - 1), b = clampi(stop, step > 0 ? n : -1);
  const uint64_t count = walk_count(a, b, step);  // <= n, so the indices below stay in [-1, n]
  const auto index = [&](uint64_t k) { return static_cast<size_t>(a + static_cast<__int128>(step) * k); };
  if (obj.kind == Kind::List) {
    check_bytes(size_mul(count, sizeof(Value)), "a list slice");
    List out;
    out.reserve(count);
    for (uint64_t k = 0; k < count; ++k) out.push_back((*obj.list)[index(k)]);
    return Value::make_list(std::move(out));
  }
  const TString& s = *obj.str;
  if (step == 1) return Value::string(s.substr(off[a], count ? off[b] - off[a] : 0));
  check_bytes(string_cost(size_mul(count, 4)), "a string slice");
  TString r;
  for (uint64_t k = 0; k < count; ++k) {
    const size_t c = index(k);
    r.append(s.substr(off[c], off[c + 1] - off[c]));
  }
  return Value::string(std::move(r));
}

Value binary(const std::string& op, const Value& a, const Value& b, size_t line) {
  if (op == "==") return Value::boolean(values_equal(a, b));
  if (op == "!=") return Value::boolean(!values_equal(a, b));
  if (op == "~") {
    TString ta, tb;
    const TString& x = text_ref(a, ta);
    const TString& y = text_ref(b, tb);
    check_bytes(string_cost(size_add(x.s.size(), y.s.size())), "'~' concatenation");
    TString s;
    s.s.reserve(x.s.size() + y.s.size());
    s.append(x);
    s.append(y);
    return Value::string(std::move(s));
  }
  if (op == "in" || op == "notin") {
    bool r = false;
    if (b.kind == Kind::String) {
      charge_work(b.str->s.size());
      r = b.str->s.find(want_str(a, "'in' on a string", line)) != std::string::npos;
    } else if (b.kind == Kind::List) {
      charge_work(b.list->size() * sizeof(Value));
      r = std::any_of(b.list->begin(), b.list->end(), [&](const Value& x) { return values_equal(a, x); });
    } else if (b.kind == Kind::Dict || b.kind == Kind::Namespace) {
      r = a.kind == Kind::String && b.get(a.str->s);
    } else {
      fail("template line ", line, ": 'in' needs a string, list or dict on the right, got ", kind_name(b.kind));
    }
    return Value::boolean(op == "in" ? r : !r);
  }
  const bool num = (a.kind == Kind::Int || a.kind == Kind::Float || a.kind == Kind::Bool) &&
                   (b.kind == Kind::Int || b.kind == Kind::Float || b.kind == Kind::Bool);
  if (op == "+") {
    if (a.kind == Kind::String && b.kind == Kind::String) {
      check_bytes(string_cost(size_add(a.str->s.size(), b.str->s.size())), "string '+'");
      TString s;
      s.s.reserve(a.str->s.size() + b.str->s.size());
      s.append(*a.str);
      s.append(*b.str);
      return Value::string(std::move(s));
    }
    if (a.kind == Kind::List && b.kind == Kind::List) {
      check_bytes(size_mul(size_add(a.list->size(), b.list->size()), sizeof(Value)), "list '+'");
      List l;
      l.reserve(a.list->size() + b.list->size());
      l.insert(l.end(), a.list->begin(), a.list->end());
      l.insert(l.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(l));
    }
  }
  if (op == "*" && ((a.kind == Kind::String && b.kind == Kind::Int) || (a.kind == Kind::Int && b.kind == Kind::String))) {
    const TString& str = a.kind == Kind::String ? *a.str : *b.str;
    const int64_t times = a.kind == Kind::Int ? a.i : b.i;
    if (times <= 0 || str.s.empty()) return Value::plain("");
    // Sized before anything is allocated: 'x' * 10**10 is refused here, not after 10 GB of appends.
    check_bytes(string_cost(size_mul(str.s.size(), static_cast<uint64_t>(times))), "string repetition");
    TString s;
    s.s.reserve(str.s.size() * static_cast<size_t>(times));
    for (int64_t k = 0; k < times; ++k) s.append(str);
    return Value::string(std::move(s));
  }
  if (num) {
    if (a.kind != Kind::Float && b.kind != Kind::Float)  // ints (and bools) stay exact 64-bit integers
      return int_binary(op, a.kind == Kind::Int ? a.i : a.b, b.kind == Kind::Int ? b.i : b.b, line);
    const double x = a.kind == Kind::Float ? a.f : a.kind == Kind::Int ? static_cast<double>(a.i) : a.b;
    const double y = b.kind == Kind::Float ? b.f : b.kind == Kind::Int ? static_cast<double>(b.i) : b.b;
    return float_binary(op, x, y, line);
  }
  if (a.kind == Kind::String && b.kind == Kind::String) {
    charge_work(std::min(a.str->s.size(), b.str->s.size()));
    const int c = a.str->s.compare(b.str->s);
    if (op == "<") return Value::boolean(c < 0);
    if (op == ">") return Value::boolean(c > 0);
    if (op == "<=") return Value::boolean(c <= 0);
    if (op == ">=") return Value::boolean(c >= 0);
  }
  fail("template line ", line, ": unsupported operand types for ", op, ": ", kind_name(a.kind), " and ", kind_name(b.kind));
}

Value unary_minus(const Value& v, size_t line) {
  if (v.kind == Kind::Int) {
    DS_CHECK(v.i != INT64_MIN, "template line ", line, ": integer overflow in -(", v.i, ")");
    return Value::integer(-v.i);
  }
  if (v.kind == Kind::Float) return Value::number(-v.f);
  fail("template line ", line, ": unary - on a ", kind_name(v.kind));
}

Value apply_filter(const std::string& f, const Value& v, const std::vector<Value>& args, size_t line) {
  if (f == "length" || f == "count") {
    if (v.kind == Kind::String) return Value::integer(static_cast<int64_t>(cp_count(v.str->s)));
    if (v.kind == Kind::List) return Value::integer(static_cast<int64_t>(v.list->size()));
    if (v.kind == Kind::Dict) return Value::integer(static_cast<int64_t>(v.dict->size()));
    fail("template line ", line, ": length of a ", kind_name(v.kind));
  }
  if (f == "tojson") {
    std::string j = to_json_text(v);
    return Value::string(has_taint(v) ? TString::data(std::move(j)) : TString{std::move(j), {}});
  }
  if (f == "trim") return v.kind == Kind::String ? strip(*v.str, args.empty() ? nullptr : &args[0], true, true) : v;
  if (f == "string") return v.kind == Kind::String ? v : Value::string(to_text(v));
  if (f == "safe" || f == "e" || f == "escape") return v;  // autoescape is off for chat templates
  if (f == "default" || f == "d") {
    const bool boolean = args.size() > 1 && args[1].truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return args.empty() ? Value::plain("") : args[0];
    return v;
  }
  if (f == "first" || f == "last") {
    if (v.kind == Kind::String) return char_value(*v.str, f == "first" ? 0 : -1);
    if (v.kind != Kind::List || v.list->empty()) return Value();
    return f == "first" ? v.list->front() : v.list->back();
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
    const TString sep = args.empty() ? TString{} : to_text(args[0]);
    // Sized first: joining a list that holds one big string many times is refused before anything is copied.
    size_t size = 0;
    for (size_t k = 0; k < v.list->size(); ++k) {
      TString tmp;
      size = size_add(size, size_add(k ? sep.s.size() : 0, text_ref((*v.list)[k], tmp).s.size()));
      check_bytes(string_cost(size), "join");
    }
    TString out;
    out.s.reserve(size);
    for (size_t k = 0; k < v.list->size(); ++k) {
      TString tmp;
      if (k) out.append(sep);
      out.append(text_ref((*v.list)[k], tmp));
    }
    return Value::string(std::move(out));
  }
  if (f == "upper" || f == "lower") return call_method(v, f, {}, line);
  if (f == "items") return call_method(v, "items", {}, line);
  if (f == "reverse") {
    if (v.kind == Kind::String) {
      List c = string_chars(*v.str);
      check_bytes(string_cost(v.str->s.size()), "reverse");
      TString s;
      for (auto it = c.rbegin(); it != c.rend(); ++it) s.append(*it->str);
      return Value::string(std::move(s));
    }
    DS_CHECK(v.kind == Kind::List, "template line ", line, ": reverse expects a list or string");
    check_bytes(size_mul(v.list->size(), sizeof(Value)), "reverse");
    List l(v.list->rbegin(), v.list->rend());
    return Value::make_list(std::move(l));
  }
  if (f == "int") {
    if (v.kind == Kind::Int) return v;
    if (v.kind == Kind::Bool) return Value::integer(v.b);
    if (v.kind == Kind::Float) {
      if (std::isnan(v.f)) return Value::integer(0);  // Jinja: int() fails with ValueError -> the default, 0
      // Casting inf or a float beyond int64 is undefined behaviour in C++; Python would give a big int (or fail).
      DS_CHECK(v.f >= -9223372036854775808.0 && v.f < 9223372036854775808.0, "template line ", line, ": int of ",
               v.f, " does not fit in 64 bits");
      return Value::integer(static_cast<int64_t>(v.f));
    }
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
  if (t == "in") return binary("in", v, args[0], line).b;
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
      charge_work(p.size());
      const bool r = p.size() <= s.s.size() &&
                     (m == "startswith" ? s.s.compare(0, p.size(), p) == 0 : s.s.compare(s.s.size() - p.size(), p.size(), p) == 0);
      return Value::boolean(r);
    }
    if (m == "upper" || m == "lower") {  // ASCII case mapping (enough for role names and keywords)
      check_bytes(string_cost(s.s.size()), m.c_str());
      TString r = s;
      for (char& c : r.s)
        if (static_cast<unsigned char>(c) < 0x80) c = m == "upper" ? static_cast<char>(std::toupper(c)) : static_cast<char>(std::tolower(c));
      return Value::string(std::move(r));
    }
    if (m == "replace") {
      DS_CHECK(args.size() >= 2, "template line ", line, ": replace(old, new)");
      const std::string& from = want_str(args[0], "replace", line);
      want_str(args[1], "replace", line);
      const TString& to = *args[1].str;
      DS_CHECK(!from.empty(), "template line ", line, ": replace with an empty pattern is not supported");
      // Count the matches and size the result before building it: ('x' * N).replace('x', big) is refused up front.
      charge_work(s.s.size());
      size_t hits = 0;
      for (size_t f = s.s.find(from); f != std::string::npos; f = s.s.find(from, f + from.size())) ++hits;
      const size_t size = size_add(s.s.size() - hits * from.size(), size_mul(hits, to.s.size()));
      check_bytes(string_cost(size), "replace");
      TString out;
      out.s.reserve(size);
      size_t pos = 0, f;
      while ((f = s.s.find(from, pos)) != std::string::npos) {
        out.append(s.substr(pos, f - pos));
        out.append(to);
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
      check_bytes(size_mul(obj.dict->size(), m == "items" ? 2 * sizeof(Value) + 2 * kObjectBytes : sizeof(Value)), m.c_str());
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
  // The list is sized first: range(10**18) is refused by the budget, not after filling memory.
  const uint64_t n = walk_count(a, b, s);
  check_bytes(size_mul(n, sizeof(Value)), "range()");
  List l;
  l.reserve(n);
  for (uint64_t k = 0; k < n; ++k) l.push_back(Value::integer(static_cast<int64_t>(a + static_cast<__int128>(s) * k)));
  return Value::make_list(std::move(l));
}

}  // namespace ds::tok::jinja

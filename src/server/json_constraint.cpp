// SPDX-License-Identifier: MIT
#include "server/json_constraint.h"

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string_view>

namespace ds::server {

using ojson = nlohmann::ordered_json;
using Kind = JsonGrammar::Kind;
using Node = JsonGrammar::Node;

namespace {

constexpr uint8_t kMaxWs = 16;  // whitespace bytes in a row between tokens: enough to indent, too few to spin
constexpr uint32_t kMaxIntDigits = 15, kMaxFracDigits = 15, kMaxExpDigits = 3;  // numbers end
constexpr size_t kMaxChoices = 64;  // enum values, object properties (bit masks)

bool is_ws(uint8_t b) { return b == ' ' || b == '\n' || b == '\r' || b == '\t'; }
bool is_digit(uint8_t b) { return b >= '0' && b <= '9'; }
bool is_hex(uint8_t b) { return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'); }
uint64_t bit(size_t j) { return uint64_t(1) << j; }
uint64_t all_bits(size_t n) { return n >= 64 ? ~uint64_t(0) : bit(n) - 1; }

// Properties that may come next in an object from property `from` on: every one up to the first required one.
uint64_t key_candidates(const Node& n, uint32_t from) {
  uint64_t m = 0;
  for (size_t j = from; j < n.keys.size(); ++j) {
    m |= bit(j);
    if (n.required[j]) break;
  }
  return m;
}

bool required_from(const Node& n, uint32_t from) {
  for (size_t j = from; j < n.keys.size(); ++j)
    if (n.required[j]) return true;
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The automaton

JsonState JsonGrammar::start() const {
  JsonState s;
  s.depth = 1;
  s.f[0].node = root_;
  return s;
}

bool JsonGrammar::push_value(JsonState& s, uint32_t id, uint8_t b) const {
  while (nodes_[id].kind == Kind::Choice) {
    const int32_t alt = nodes_[id].first[b];
    if (alt < 0) return false;
    id = uint32_t(alt);
  }
  const Node& n = nodes_[id];
  const bool container = n.kind == Kind::Object || n.kind == Kind::AnyObject || n.kind == Kind::Array;
  if (s.depth + (container ? 2 : 1) > JsonState::kMaxDepth) return false;  // room for the container and a scalar
  JsonState::Frame& f = s.f[s.depth++];
  f = JsonState::Frame{};
  f.node = id;
  if (n.kind == Kind::Literal) f.mask = all_bits(n.literals.size());
  return true;
}

bool JsonGrammar::endable(const JsonState::Frame& f) const {
  const Node& n = nodes_[f.node];
  if (n.kind == Kind::Number) return f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8;
  if (n.kind != Kind::Literal || f.n == 0) return false;
  for (size_t j = 0; j < n.literals.size(); ++j)
    if ((f.mask & bit(j)) && n.literals[j].size() == f.n) return true;
  return false;
}

bool JsonGrammar::complete(const JsonState& s) const {
  if (s.failed || s.f[0].phase != 1) return false;
  return s.depth == 1 || (s.depth == 2 && endable(s.f[1]));
}

bool JsonGrammar::accept(JsonState& s, uint8_t b) const {
  if (s.failed) return false;
  const bool ws = is_ws(b);
  while (true) {
    switch (step(s, b, ws)) {
      case Step::Take: s.ws = 0; return true;
      case Step::Space:
        if (s.ws >= kMaxWs) break;
        ++s.ws;
        return true;
      case Step::Close: --s.depth, s.ws = 0; return true;
      case Step::Pass: --s.depth; continue;
      case Step::Push: continue;
      case Step::Reject: break;
    }
    s.failed = true;
    return false;
  }
}

JsonGrammar::Step JsonGrammar::step(JsonState& s, uint8_t b, bool ws) const {
  JsonState::Frame& f = s.f[s.depth - 1];
  auto value = [&](uint32_t node, uint8_t next_phase) {
    f.phase = next_phase;
    return push_value(s, node, b) ? Step::Push : Step::Reject;
  };
  if (s.depth == 1) {  // the root: one value, then nothing
    if (f.phase == 1) return Step::Reject;
    if (ws) return Step::Space;
    return value(root_, 1);
  }
  const Node& n = nodes_[f.node];
  switch (n.kind) {
    case Kind::Object:
      switch (f.phase) {
        case 0: return b == '{' ? (f.phase = 1, Step::Take) : Step::Reject;
        case 1:
        case 6:  // after '{' or ','
          if (ws) return Step::Space;
          if (b == '}' && f.phase == 1) return required_from(n, f.next) ? Step::Reject : Step::Close;
          if (b != '"') return Step::Reject;
          f.mask = key_candidates(n, f.next), f.n = 0, f.phase = 2;
          [[fallthrough]];
        case 2: {  // in a key: the candidates whose JSON text goes on with b
          uint64_t m = 0;
          for (size_t j = 0; j < n.keys.size(); ++j)
            if ((f.mask & bit(j)) && f.n < n.keys[j].size() && uint8_t(n.keys[j][f.n]) == b) m |= bit(j);
          if (!m) return Step::Reject;
          f.mask = m, ++f.n;
          for (size_t j = 0; j < n.keys.size(); ++j)
            if ((m & bit(j)) && n.keys[j].size() == f.n) {  // a whole key (its closing quote ends no other)
              f.n = uint32_t(j), f.next = uint32_t(j + 1), f.phase = 3;
              break;
            }
          return Step::Take;
        }
        case 3: return ws ? Step::Space : b == ':' ? (f.phase = 4, Step::Take) : Step::Reject;
        case 4: return ws ? Step::Space : value(n.values[f.n], 5);
        case 5:
          if (ws) return Step::Space;
          if (b == ',') return key_candidates(n, f.next) ? (f.phase = 6, Step::Take) : Step::Reject;
          if (b == '}') return required_from(n, f.next) ? Step::Reject : Step::Close;
          return Step::Reject;
      }
      return Step::Reject;
    case Kind::AnyObject:
      switch (f.phase) {
        case 0: return b == '{' ? (f.phase = 1, Step::Take) : Step::Reject;
        case 1:
        case 6:
          if (ws) return Step::Space;
          if (b == '}' && f.phase == 1) return Step::Close;
          return b == '"' ? value(n.key, 3) : Step::Reject;
        case 3: return ws ? Step::Space : b == ':' ? (f.phase = 4, Step::Take) : Step::Reject;
        case 4: return ws ? Step::Space : value(n.items, 5);
        case 5:
          if (ws) return Step::Space;
          if (b == ',') return f.phase = 6, Step::Take;
          return b == '}' ? Step::Close : Step::Reject;
      }
      return Step::Reject;
    case Kind::Array:
      switch (f.phase) {
        case 0: return b == '[' ? (f.phase = 1, Step::Take) : Step::Reject;
        case 1:
          if (ws) return Step::Space;
          if (b == ']') return n.min == 0 ? Step::Close : Step::Reject;
          if (n.max == 0) return Step::Reject;
          f.n = 1;
          return value(n.items, 2);
        case 2:
          if (ws) return Step::Space;
          if (b == ',') return f.n < n.max ? (f.phase = 3, Step::Take) : Step::Reject;
          return b == ']' && f.n >= n.min ? Step::Close : Step::Reject;
        case 3:
          if (ws) return Step::Space;
          ++f.n;
          return value(n.items, 2);
      }
      return Step::Reject;
    case Kind::String:
      switch (f.phase) {
        case 0: return b == '"' ? (f.phase = 1, Step::Take) : Step::Reject;
        case 1:  // characters; each counts one towards min/max (an escape too)
          if (b == '"') return f.n >= n.min ? Step::Close : Step::Reject;
          if (b < 0x20 || f.n >= n.max) return Step::Reject;
          ++f.n;
          if (b == '\\') return f.phase = 2, Step::Take;
          if (b < 0x80) return Step::Take;
          // UTF-8: the lead byte fixes the number of continuation bytes and the range of the first (no overlong
          // forms, no surrogates, nothing above U+10FFFF).
          f.lo = 0x80, f.hi = 0xBF;
          if (b >= 0xC2 && b <= 0xDF) f.pending = 1;
          else if (b >= 0xE0 && b <= 0xEF)
            f.pending = 2, f.lo = b == 0xE0 ? 0xA0 : 0x80, f.hi = b == 0xED ? 0x9F : 0xBF;
          else if (b >= 0xF0 && b <= 0xF4)
            f.pending = 3, f.lo = b == 0xF0 ? 0x90 : 0x80, f.hi = b == 0xF4 ? 0x8F : 0xBF;
          else return Step::Reject;
          return f.phase = 3, Step::Take;
        case 2:  // after a backslash
          if (b == 'u') return f.phase = 4, f.pending = 4, f.lo = 0, Step::Take;
          return b != 0 && std::string_view("\"\\/bfnrt").find(char(b)) != std::string_view::npos
                     ? (f.phase = 1, Step::Take)
                     : Step::Reject;
        case 3:  // UTF-8 continuation bytes
          if (b < f.lo || b > f.hi) return Step::Reject;
          f.lo = 0x80, f.hi = 0xBF;
          if (--f.pending == 0) f.phase = 1;
          return Step::Take;
        case 4:  // \uXXXX, never a surrogate (D800-DFFF): each escape is one whole character
          if (!is_hex(b)) return Step::Reject;
          if (f.pending == 4 && (b == 'd' || b == 'D')) f.lo = 1;
          else if (f.pending == 3 && f.lo == 1 && b > '7') return Step::Reject;
          if (--f.pending == 0) f.phase = 1;
          return Step::Take;
      }
      return Step::Reject;
    case Kind::Number: {
      const bool more = !n.integer;
      switch (f.phase) {
        case 0:
          if (b == '-') return f.phase = 1, Step::Take;
          [[fallthrough]];
        case 1:
          if (b == '0') return f.phase = 2, Step::Take;
          if (is_digit(b)) return f.phase = 3, f.n = 1, Step::Take;
          return Step::Reject;
        case 2:
        case 3:  // integer part
          if (f.phase == 3 && is_digit(b) && f.n < kMaxIntDigits) return ++f.n, Step::Take;
          if (more && b == '.') return f.phase = 4, Step::Take;
          if (more && (b == 'e' || b == 'E')) return f.phase = 6, Step::Take;
          return Step::Pass;
        case 4:
          return is_digit(b) ? (f.phase = 5, f.n = 1, Step::Take) : Step::Reject;
        case 5:
          if (is_digit(b) && f.n < kMaxFracDigits) return ++f.n, Step::Take;
          if (b == 'e' || b == 'E') return f.phase = 6, Step::Take;
          return Step::Pass;
        case 6:
          if (b == '+' || b == '-') return f.phase = 7, Step::Take;
          [[fallthrough]];
        case 7:
          return is_digit(b) ? (f.phase = 8, f.n = 1, Step::Take) : Step::Reject;
        case 8:
          return is_digit(b) && f.n < kMaxExpDigits ? (++f.n, Step::Take) : Step::Pass;
      }
      return Step::Reject;
    }
    case Kind::Literal: {
      uint64_t m = 0;
      bool whole = false;  // a candidate ends here
      for (size_t j = 0; j < n.literals.size(); ++j) {
        if (!(f.mask & bit(j))) continue;
        const std::string& l = n.literals[j];
        if (l.size() == f.n) whole = true;
        else if (uint8_t(l[f.n]) == b) m |= bit(j);
      }
      if (!m) return whole && f.n > 0 ? Step::Pass : Step::Reject;
      f.mask = m, ++f.n;
      for (size_t j = 0; j < n.literals.size(); ++j)
        if ((m & bit(j)) && n.literals[j].size() > f.n) return Step::Take;
      return Step::Close;
    }
    case Kind::Choice: break;  // resolved when pushed
  }
  return Step::Reject;
}

// ---------------------------------------------------------------------------------------------------------------
// Schema -> nodes

class SchemaCompiler {
 public:
  SchemaCompiler(JsonGrammar& g, const ojson* root, bool strict) : g_(g), root_(root), strict_(strict) {}

  uint32_t add(Node n) {
    g_.nodes_.push_back(std::move(n));
    return uint32_t(g_.nodes_.size() - 1);
  }

  // Any JSON value: a choice of an object, array, string, number or true/false/null by the first byte.
  uint32_t any() {
    if (any_) return *any_;
    any_ = add({});  // reserved: the containers below refer to it
    Node str, num, lit, obj, arr, ch;
    str.kind = Kind::String;
    num.kind = Kind::Number;
    lit.literals = {"true", "false", "null"};
    obj.kind = Kind::AnyObject;
    obj.key = add(str);
    obj.items = *any_;
    arr.kind = Kind::Array;
    arr.items = *any_;
    ch.kind = Kind::Choice;
    ch.values = {add(obj), add(arr), obj.key, add(num), add(lit)};
    first_table(ch, "type", "#");
    g_.nodes_[*any_] = std::move(ch);
    return *any_;
  }

  uint32_t any_object() {
    Node obj;
    obj.kind = Kind::AnyObject;
    Node str;
    str.kind = Kind::String;
    obj.key = add(str);
    obj.items = any();
    return add(obj);
  }

  uint32_t compile(const ojson& s, const std::string& path) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return any();
      throw SchemaError(path + ": the schema false allows no value", "false", path);
    }
    if (!s.is_object()) throw SchemaError(path + ": a schema must be an object", "schema", path);
    static const std::set<std::string> known = {
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength",
        "maxLength", "enum", "const", "anyOf", "$ref", "$defs", "definitions", "title", "description", "default",
        "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly"};
    static const std::set<std::string> annotations = {"$defs", "definitions", "title", "description", "default",
                                                      "examples", "$schema", "$id", "$comment", "deprecated",
                                                      "readOnly", "writeOnly"};
    for (const auto& [k, v] : s.items())
      if (!known.count(k)) throw SchemaError(path + ": the keyword '" + k + "' is not supported", k, path);
    for (const char* alone : {"$ref", "anyOf"}) {
      if (!s.contains(alone)) continue;
      for (const auto& [k, v] : s.items())
        if (k != alone && !annotations.count(k))
          throw SchemaError(path + ": '" + k + "' beside '" + alone + "' is not supported", k, path);
    }
    if (s.contains("$ref")) return ref(s["$ref"], path);
    if (s.contains("anyOf")) {
      const ojson& alts = s["anyOf"];
      if (!alts.is_array() || alts.empty())
        throw SchemaError(path + ": 'anyOf' must be a non-empty array", "anyOf", path);
      std::vector<uint32_t> ids;
      for (size_t i = 0; i < alts.size(); ++i) ids.push_back(compile(alts[i], path + "/anyOf/" + std::to_string(i)));
      return choice(ids, "anyOf", path);
    }
    std::vector<std::string> types;
    if (const auto t = s.find("type"); t != s.end()) {
      if (t->is_string()) types.push_back(t->get<std::string>());
      else if (t->is_array() && !t->empty() &&
               std::all_of(t->begin(), t->end(), [](const ojson& x) { return x.is_string(); }))
        for (const auto& x : *t) types.push_back(x.get<std::string>());
      else throw SchemaError(path + ": 'type' must be a string or a non-empty array of strings", "type", path);
    }
    if (s.contains("enum") || s.contains("const")) return literal(s, types, path);
    if (types.empty()) {  // the keywords say which type is meant; none: any value
      if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) types = {"object"};
      else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) types = {"array"};
      else if (s.contains("minLength") || s.contains("maxLength")) types = {"string"};
      else return any();
    }
    std::vector<uint32_t> ids;
    for (const auto& t : types) ids.push_back(typed(s, t, path));
    return ids.size() == 1 ? ids[0] : choice(ids, "type", path);
  }

  // Frames a value of `id` needs at most: a scalar one, a container one more than its deepest child (memoised:
  // $refs make the nodes a DAG, which could be wide at every level).
  int depth(uint32_t id) {
    if (any_ && id == *any_) return 1;  // containers inside "any" are only opened where there is room
    depth_.resize(g_.nodes_.size(), 0);
    if (depth_[id]) return depth_[id];
    const Node& n = g_.nodes_[id];
    int d = 1;
    switch (n.kind) {
      case Kind::Object:
        for (uint32_t v : n.values) d = std::max(d, depth(v));
        d += 1;
        break;
      case Kind::AnyObject: d = 2; break;
      case Kind::Array: d = 1 + (n.max > 0 ? depth(n.items) : 1); break;
      case Kind::Choice:
        for (uint32_t v : n.values) d = std::max(d, depth(v));
        break;
      default: break;
    }
    return depth_[id] = d;
  }

 private:
  uint32_t ref(const ojson& r, const std::string& path) {
    const std::string target = r.is_string() ? r.get<std::string>() : "";
    std::string name;
    const ojson* defs = nullptr;
    for (const char* prefix : {"#/$defs/", "#/definitions/"})
      if (target.rfind(prefix, 0) == 0) {
        name = target.substr(std::string(prefix).size());
        const std::string key = std::string(prefix).substr(2, std::string(prefix).size() - 3);
        if (root_ && root_->is_object() && root_->contains(key) && root_->at(key).is_object()) defs = &root_->at(key);
      }
    if (!defs || name.empty() || !defs->contains(name))
      throw SchemaError(path + ": '$ref' must name a schema in the root's $defs or definitions", "$ref", path);
    if (const auto it = refs_.find(target); it != refs_.end()) {
      if (it->second < 0) throw SchemaError(path + ": a recursive '$ref' is not supported", "$ref", path);
      return uint32_t(it->second);
    }
    refs_[target] = -1;
    const uint32_t id = compile(defs->at(name), target);
    refs_[target] = int64_t(id);
    return id;
  }

  static bool type_matches(const ojson& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "integer")
      return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    if (t == "number") return v.is_number();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    return false;
  }

  uint32_t literal(const ojson& s, const std::vector<std::string>& types, const std::string& path) {
    std::vector<ojson> values;
    const char* kw = s.contains("enum") ? "enum" : "const";
    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty())
        throw SchemaError(path + ": 'enum' must be a non-empty array", "enum", path);
      for (const auto& v : s["enum"]) values.push_back(v);
    }
    if (s.contains("const")) {
      if (!values.empty() && std::find(values.begin(), values.end(), s["const"]) == values.end())
        throw SchemaError(path + ": 'const' is not one of 'enum'", "const", path);
      values = {s["const"]};
    }
    Node n;
    for (const auto& v : values) {
      if (!types.empty() &&
          std::none_of(types.begin(), types.end(), [&](const std::string& t) { return type_matches(v, t); }))
        throw SchemaError(path + ": a value of '" + kw + "' does not match 'type'", kw, path);
      n.literals.push_back(v.dump(-1, ' ', false, ojson::error_handler_t::replace));
    }
    return add_literal(std::move(n), kw, path);
  }

  uint32_t add_literal(Node n, const char* kw, const std::string& path) {
    std::sort(n.literals.begin(), n.literals.end());
    n.literals.erase(std::unique(n.literals.begin(), n.literals.end()), n.literals.end());
    if (n.literals.size() > kMaxChoices)
      throw SchemaError(path + ": more than " + std::to_string(kMaxChoices) + " values in '" + kw + "'", kw, path);
    n.kind = Kind::Literal;
    return add(std::move(n));
  }

  static uint32_t count(const ojson& s, const char* name, const std::string& path, uint32_t def) {
    const auto it = s.find(name);
    if (it == s.end()) return def;
    if (!it->is_number_unsigned() || it->get<uint64_t>() > 1000000)
      throw SchemaError(path + ": '" + name + "' must be an integer in [0, 1000000]", name, path);
    return uint32_t(it->get<uint64_t>());
  }

  uint32_t typed(const ojson& s, const std::string& t, const std::string& path) {
    Node n;
    if (t == "string") {
      n.kind = Kind::String;
      n.min = count(s, "minLength", path, 0);
      n.max = count(s, "maxLength", path, UINT32_MAX);
      if (n.min > n.max) throw SchemaError(path + ": 'minLength' is above 'maxLength'", "minLength", path);
      return add(std::move(n));
    }
    if (t == "number" || t == "integer") {
      n.kind = Kind::Number;
      n.integer = t == "integer";
      return add(std::move(n));
    }
    if (t == "boolean" || t == "null") {
      n.literals = t == "null" ? std::vector<std::string>{"null"} : std::vector<std::string>{"true", "false"};
      return add_literal(std::move(n), "type", path);
    }
    if (t == "array") {
      n.kind = Kind::Array;
      const auto it = s.find("items");
      if (it != s.end() && it->is_array())
        throw SchemaError(path + ": 'items' as an array (tuple) is not supported", "items", path);
      n.items = it == s.end() ? any() : compile(*it, path + "/items");
      n.min = count(s, "minItems", path, 0);
      n.max = count(s, "maxItems", path, UINT32_MAX);
      if (n.min > n.max) throw SchemaError(path + ": 'minItems' is above 'maxItems'", "minItems", path);
      return add(std::move(n));
    }
    if (t != "object") throw SchemaError(path + ": the type '" + t + "' is not supported", "type", path);
    const ojson empty = ojson::object();
    const auto pit = s.find("properties");
    const ojson& props = pit == s.end() ? empty : *pit;
    if (!props.is_object()) throw SchemaError(path + ": 'properties' must be an object", "properties", path);
    if (props.size() > kMaxChoices)
      throw SchemaError(path + ": more than " + std::to_string(kMaxChoices) + " properties", "properties", path);
    bool extra = true;  // additionalProperties allows other keys (none is generated)
    if (const auto a = s.find("additionalProperties"); a != s.end()) {
      if (a->is_boolean()) extra = a->get<bool>();
      else if (!(a->is_object() && a->empty()))
        throw SchemaError(path + ": 'additionalProperties' other than true or false is not supported",
                          "additionalProperties", path);
    }
    std::set<std::string> required;
    if (const auto r = s.find("required"); r != s.end()) {
      if (!r->is_array()) throw SchemaError(path + ": 'required' must be an array of strings", "required", path);
      for (const auto& k : *r) {
        if (!k.is_string() || !props.contains(k.get<std::string>()))
          throw SchemaError(path + ": 'required' names a key that is not in 'properties'", "required", path);
        required.insert(k.get<std::string>());
      }
    }
    if (strict_) {
      if (extra)
        throw SchemaError(path + ": strict mode needs 'additionalProperties': false", "additionalProperties", path);
      if (required.size() != props.size())
        throw SchemaError(path + ": strict mode needs every property in 'required'", "required", path);
    }
    if (props.empty() && extra) return any_object();
    n.kind = Kind::Object;
    for (const auto& [k, v] : props.items()) {
      n.keys.push_back(ojson(k).dump(-1, ' ', false, ojson::error_handler_t::replace));
      n.required.push_back(required.count(k) > 0);
      n.values.push_back(compile(v, path + "/properties/" + k));
    }
    return add(std::move(n));
  }

  // First bytes a value of `id` can start with.
  void first_bytes(uint32_t id, std::vector<bool>& out) const {
    const Node& n = g_.nodes_[id];
    auto set = [&](uint8_t b) { out[b] = true; };
    switch (n.kind) {
      case Kind::Object:
      case Kind::AnyObject: set('{'); break;
      case Kind::Array: set('['); break;
      case Kind::String: set('"'); break;
      case Kind::Number:
        set('-');
        for (uint8_t b = '0'; b <= '9'; ++b) set(b);
        break;
      case Kind::Literal:
        for (const auto& l : n.literals) set(uint8_t(l[0]));
        break;
      case Kind::Choice:
        for (uint32_t v : n.values) first_bytes(v, out);
        break;
    }
  }

  void first_table(Node& ch, const char* kw, const std::string& path) const {
    ch.first.assign(256, -1);
    for (uint32_t v : ch.values) {
      std::vector<bool> fb(256, false);
      first_bytes(v, fb);
      for (int b = 0; b < 256; ++b) {
        if (!fb[size_t(b)]) continue;
        if (ch.first[size_t(b)] >= 0)
          throw SchemaError(path + ": alternatives of '" + kw +
                                "' must start differently (at most one object, array, string and number)",
                            kw, path);
        ch.first[size_t(b)] = int32_t(v);
      }
    }
  }

  // One of several values, told apart by their first byte; enum/const/boolean/null alternatives become one.
  uint32_t choice(const std::vector<uint32_t>& ids, const char* kw, const std::string& path) {
    std::vector<uint32_t> flat;
    Node lits;
    bool any_lit = false;
    for (uint32_t id : ids) {
      const Node& n = g_.nodes_[id];
      if (n.kind == Kind::Choice && !(any_ && id == *any_)) {
        flat.insert(flat.end(), n.values.begin(), n.values.end());
      } else {
        flat.push_back(id);
      }
    }
    Node ch;
    ch.kind = Kind::Choice;
    for (uint32_t id : flat) {
      const Node& n = g_.nodes_[id];
      if (n.kind == Kind::Literal) {
        lits.literals.insert(lits.literals.end(), n.literals.begin(), n.literals.end());
        any_lit = true;
      } else {
        ch.values.push_back(id);
      }
    }
    if (any_lit) ch.values.push_back(add_literal(std::move(lits), kw, path));
    if (ch.values.size() == 1) return ch.values[0];
    first_table(ch, kw, path);
    return add(std::move(ch));
  }

  JsonGrammar& g_;
  const ojson* root_;
  bool strict_;
  std::optional<uint32_t> any_;
  std::map<std::string, int64_t> refs_;  // $ref target -> node (-1 while it is being compiled)
  std::vector<int> depth_;               // memo of depth(), 0: not yet known
};

std::shared_ptr<const JsonGrammar> JsonGrammar::any_object() {
  static const std::shared_ptr<const JsonGrammar> g = [] {
    auto out = std::make_shared<JsonGrammar>();
    SchemaCompiler c(*out, nullptr, false);
    out->root_ = c.any_object();
    return out;
  }();
  return g;
}

std::shared_ptr<const JsonGrammar> JsonGrammar::from_schema(const ojson& schema, bool strict) {
  auto out = std::make_shared<JsonGrammar>();
  SchemaCompiler c(*out, &schema, strict);
  out->root_ = c.compile(schema, "#");
  if (1 + c.depth(out->root_) > JsonState::kMaxDepth)
    throw SchemaError("#: the schema nests more than " + std::to_string(JsonState::kMaxDepth - 2) + " levels",
                      "depth", "#");
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary trie and the constraint

TokenVocab::TokenVocab(const tok::Tokenizer& tok, int64_t vocab, std::vector<int32_t> eos) {
  pieces_.resize(size_t(vocab));
  const int64_t n = std::min<int64_t>(vocab, int64_t(tok.vocab_size()));
  for (int32_t id = 0; id < n; ++id)
    if (tok.is_valid_id(id) && !tok.is_added(id) && !tok.is_special(id)) pieces_[size_t(id)] = tok.token_to_piece(id);
  for (int32_t e : eos)
    if (e >= 0 && e < vocab) eos_.push_back(e);
  // As tok::ReasoningParser: </think> ends the reasoning by id when both tags are single tokens.
  if (tok.token_to_id("<think>") >= 0 && tok.token_to_id("</think>") >= 0) think_end_ = tok.token_to_id("</think>");
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < int32_t(vocab); ++id)
    if (!pieces_[size_t(id)].empty() && pieces_[size_t(id)].size() < 4096) ids.push_back(id);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return pieces_[size_t(a)] != pieces_[size_t(b)] ? pieces_[size_t(a)] < pieces_[size_t(b)] : a < b;
  });
  // Sorted byte strings give the trie in preorder: each piece adds nodes for what it does not share with the last.
  std::vector<uint32_t> path;
  const std::string* prev = nullptr;
  for (int32_t id : ids) {
    const std::string& p = pieces_[size_t(id)];
    size_t l = 0;
    if (prev)
      while (l < prev->size() && l < p.size() && (*prev)[l] == p[l]) ++l;
    path.resize(l);
    for (size_t d = l; d < p.size(); ++d) {
      path.push_back(uint32_t(byte_.size()));
      byte_.push_back(uint8_t(p[d]));
      depth_.push_back(uint16_t(d + 1));
    }
    ends_.push_back({path.back(), id});
    max_len_ = std::max(max_len_, p.size());
    prev = &p;
  }
  end_.assign(byte_.size(), uint32_t(byte_.size()));
  std::vector<uint32_t> open;
  for (uint32_t j = 0; j < byte_.size(); ++j) {
    while (!open.empty() && depth_[open.back()] >= depth_[j]) end_[open.back()] = j, open.pop_back();
    open.push_back(j);
  }
}

void TokenVocab::allowed(const JsonGrammar& g, const JsonState& s, uint8_t* ok, std::vector<JsonState>& st) const {
  st.resize(max_len_ + 1);
  st[0].copy_from(s);
  size_t e = 0;
  for (size_t i = 0; i < byte_.size();) {
    JsonState& x = st[depth_[i]];
    x.copy_from(st[depth_[i] - 1u]);
    if (!g.accept(x, byte_[i])) {  // no token with this prefix
      i = end_[i];
      continue;
    }
    while (e < ends_.size() && ends_[e].first < i) ++e;
    for (; e < ends_.size() && ends_[e].first == i; ++e) ok[ends_[e].second] = 1;
    ++i;
  }
}

JsonConstraint::JsonConstraint(std::shared_ptr<const JsonGrammar> g, std::shared_ptr<const TokenVocab> v,
                               bool in_reasoning)
    : g_(std::move(g)), v_(std::move(v)), state_(g_->start()), reasoning_(in_reasoning) {}

std::unique_ptr<rt::LogitConstraint> JsonConstraint::clone() const {
  auto c = std::make_unique<JsonConstraint>(g_, v_, reasoning_);
  c->state_ = state_;
  c->tail_ = tail_;
  return c;
}

void JsonConstraint::mask(float* logits, int64_t vocab) {
  const int64_t V = std::min<int64_t>(vocab, v_->size());
  if (reasoning_) {  // free text, but an answer must follow: no end of sequence yet
    for (int32_t e : v_->eos()) logits[e] = -INFINITY;
    return;
  }
  ok_.assign(size_t(vocab), 0);
  v_->allowed(*g_, state_, ok_.data(), scratch_);
  const bool done = g_->complete(state_) || state_.failed;
  bool any = false;
  for (int64_t i = 0; i < V && !any; ++i) any = ok_[size_t(i)] != 0;
  for (int32_t e : v_->eos()) ok_[size_t(e)] = done || !any;  // a dead end (a vocabulary lacking a byte) ends
  for (int64_t i = 0; i < vocab; ++i)
    if (!ok_[size_t(i)]) logits[i] = -INFINITY;
}

void JsonConstraint::advance(int32_t token) {
  if (reasoning_) {
    if (v_->think_end() >= 0) {
      reasoning_ = token != v_->think_end();
      return;
    }
    // No </think> token: find the text; what follows it in the same token starts the JSON when it fits.
    tail_ += token >= 0 && token < v_->size() ? v_->piece(token) : std::string();
    static const std::string kEnd = "</think>";
    const size_t p = tail_.find(kEnd);
    if (p == std::string::npos) {
      if (tail_.size() > kEnd.size()) tail_.erase(0, tail_.size() - kEnd.size());
      return;
    }
    reasoning_ = false;
    JsonState t = state_;
    if (g_->accept(t, tail_.substr(p + kEnd.size()))) state_ = t;
    tail_.clear();
    return;
  }
  if (token < 0 || token >= v_->size() || v_->piece(token).empty() || !g_->accept(state_, v_->piece(token)))
    state_.failed = true;
}

}  // namespace ds::server

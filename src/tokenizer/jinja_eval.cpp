// SPDX-License-Identifier: MIT
// Jinja evaluator: statements, expressions and the builtins chat templates use (see jinja.h). Every node
// costs a step, recursion is bounded and output is capped, so an untrusted template cannot run away.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <unordered_map>

#include "base/error.h"
#include "tokenizer/jinja.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_builtins.h"

namespace ds::tok::jinja {

namespace {

enum class Flow { Normal, Break, Continue };

class Evaluator {
 public:
  Evaluator(const Limits& lim) : lim_(lim) {}

  void push(std::unordered_map<std::string, Value> scope = {}) { scopes_.push_back(std::move(scope)); }

  Flow exec(const Node& n, TString& out) {
    step(n);
    switch (n.kind) {
      case NodeKind::Body:
        for (const auto& k : n.kids) {
          const Flow f = exec(*k, out);
          if (f != Flow::Normal) return f;
        }
        return Flow::Normal;
      case NodeKind::Text:
        out.append_plain(n.name);
        check_output(out);
        return Flow::Normal;
      case NodeKind::Output:
        out.append(to_text(eval(*n.kids[0])));
        check_output(out);
        return Flow::Normal;
      case NodeKind::If: {
        const size_t pairs = n.kids.size() / 2;
        for (size_t k = 0; k < pairs; ++k)
          if (eval(*n.kids[2 * k]).truthy()) return exec(*n.kids[2 * k + 1], out);
        if (n.kids.size() % 2) return exec(*n.kids.back(), out);
        return Flow::Normal;
      }
      case NodeKind::For: return exec_for(n, out);
      case NodeKind::Set: {
        Value v = eval(*n.kids[0]);
        if (n.targets.size() == 1) {
          scopes_.back()[n.targets[0]] = std::move(v);
        } else {
          const Value* ns = lookup(n.targets[0]);
          DS_CHECK(ns && ns->kind == Kind::Namespace, "template line ", n.line, ": '", n.targets[0],
                   "' is not a namespace, cannot set an attribute on it");
          set_member(*ns->dict, n.targets[1], std::move(v));
        }
        return Flow::Normal;
      }
      case NodeKind::Break: return Flow::Break;
      case NodeKind::Continue: return Flow::Continue;
      default: fail("template line ", n.line, ": internal error (statement expected)");
    }
  }

  Value eval(const Node& n) {
    step(n);
    DepthGuard g(*this, n);
    switch (n.kind) {
      case NodeKind::Literal: return n.literal;
      case NodeKind::Name: {
        const Value* v = lookup(n.name);
        return v ? *v : Value();
      }
      case NodeKind::GetAttr: {
        Value obj = eval(*n.kids[0]);
        DS_CHECK(!obj.is_undefined(), "template line ", n.line, ": '", describe(*n.kids[0]), "' is undefined (getting .", n.name, ")");
        return get_attr(obj, n.name);
      }
      case NodeKind::GetItem: {
        Value obj = eval(*n.kids[0]);
        DS_CHECK(!obj.is_undefined(), "template line ", n.line, ": '", describe(*n.kids[0]), "' is undefined (subscripted)");
        return get_item(obj, eval(*n.kids[1]), n.line);
      }
      case NodeKind::Slice: {
        Value obj = eval(*n.kids[0]);
        Value a = n.kids[1] ? eval(*n.kids[1]) : Value::none();
        Value b = n.kids[2] ? eval(*n.kids[2]) : Value::none();
        Value c = n.kids[3] ? eval(*n.kids[3]) : Value::none();
        return slice(obj, a, b, c, n.line);
      }
      case NodeKind::Call: return call(n);
      case NodeKind::Filter: {
        std::vector<Value> args;
        for (size_t k = 1; k < n.kids.size(); ++k) args.push_back(eval(*n.kids[k]));
        return apply_filter(n.name, eval(*n.kids[0]), args, n.line);
      }
      case NodeKind::Test: {
        std::vector<Value> args;
        for (size_t k = 1; k < n.kids.size(); ++k) args.push_back(eval(*n.kids[k]));
        return Value::boolean(apply_test(n.name, eval(*n.kids[0]), args, n.line) != n.negate);
      }
      case NodeKind::Unary: {
        Value v = eval(*n.kids[0]);
        if (v.kind == Kind::Int) return Value::integer(n.name == "-" ? -v.i : v.i);
        if (v.kind == Kind::Float) return Value::number(n.name == "-" ? -v.f : v.f);
        fail("template line ", n.line, ": unary ", n.name, " on a ", kind_name(v.kind));
      }
      case NodeKind::Binary: return binary(n.name, eval(*n.kids[0]), eval(*n.kids[1]), n.line, lim_.max_output_bytes);
      case NodeKind::And: {
        Value a = eval(*n.kids[0]);
        return a.truthy() ? eval(*n.kids[1]) : a;
      }
      case NodeKind::Or: {
        Value a = eval(*n.kids[0]);
        return a.truthy() ? a : eval(*n.kids[1]);
      }
      case NodeKind::Not: return Value::boolean(!eval(*n.kids[0]).truthy());
      case NodeKind::Cond:
        if (eval(*n.kids[1]).truthy()) return eval(*n.kids[0]);
        return n.kids[2] ? eval(*n.kids[2]) : Value();
      case NodeKind::ListLit: {
        List l;
        for (const auto& k : n.kids) l.push_back(eval(*k));
        return Value::make_list(std::move(l));
      }
      case NodeKind::DictLit: {
        Dict d;
        for (size_t k = 0; k + 1 < n.kids.size(); k += 2) {
          Value key = eval(*n.kids[k]);
          DS_CHECK(key.kind == Kind::String, "template line ", n.line, ": dict keys must be strings");
          set_member(d, key.str->s, eval(*n.kids[k + 1]));
        }
        return Value::make_dict(std::move(d));
      }
      default: fail("template line ", n.line, ": internal error (expression expected)");
    }
  }

 private:
  struct DepthGuard {
    Evaluator& e;
    DepthGuard(Evaluator& ev, const Node& n) : e(ev) {
      DS_CHECK(++e.depth_ < e.lim_.max_depth, "template line ", n.line, ": evaluation nested too deeply");
    }
    ~DepthGuard() { --e.depth_; }
  };

  void step(const Node& n) {
    DS_CHECK(++steps_ <= lim_.max_steps, "template line ", n.line, ": step limit (", lim_.max_steps, ") exceeded");
  }
  void check_output(const TString& out) const {
    DS_CHECK(out.s.size() <= lim_.max_output_bytes, "template: output exceeds ", lim_.max_output_bytes, " bytes");
  }
  const Value* lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return &f->second;
    }
    return nullptr;
  }
  static std::string describe(const Node& n) {
    if (n.kind == NodeKind::Name) return n.name;
    if (n.kind == NodeKind::GetAttr) return describe(*n.kids[0]) + "." + n.name;
    if (n.kind == NodeKind::GetItem) return describe(*n.kids[0]) + "[...]";
    return "expression";
  }

  Flow exec_for(const Node& n, TString& out) {
    Value seq = eval(*n.kids[0]);
    List items;
    if (seq.kind == Kind::List) {
      items = *seq.list;
    } else if (seq.kind == Kind::Dict) {
      for (const auto& kv : *seq.dict) items.push_back(Value::plain(kv.first));
    } else if (seq.kind == Kind::String) {
      items = string_chars(*seq.str);
    } else if (!seq.is_undefined() && seq.kind != Kind::None) {
      fail("template line ", n.line, ": cannot iterate over a ", kind_name(seq.kind));
    } else {
      DS_CHECK(seq.is_undefined(), "template line ", n.line, ": cannot iterate over none");
    }
    const Node* cond = n.kids[3].get();
    if (cond) {  // `for x in xs if c`: filter first, so loop.* counts only the kept items
      List kept;
      for (auto& it : items) {
        push();
        bind(n, it);
        if (eval(*cond).truthy()) kept.push_back(it);
        scopes_.pop_back();
      }
      items.swap(kept);
    }
    if (items.empty()) {
      if (n.kids[2]) exec(*n.kids[2], out);
      return Flow::Normal;
    }
    const int64_t len = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < len; ++k) {
      push();
      bind(n, items[k]);
      Dict loop = {{"index", Value::integer(k + 1)},      {"index0", Value::integer(k)},
                   {"revindex", Value::integer(len - k)}, {"revindex0", Value::integer(len - k - 1)},
                   {"first", Value::boolean(k == 0)},     {"last", Value::boolean(k == len - 1)},
                   {"length", Value::integer(len)},
                   {"previtem", k > 0 ? items[k - 1] : Value()}, {"nextitem", k + 1 < len ? items[k + 1] : Value()}};
      scopes_.back()["loop"] = Value::make_dict(std::move(loop));
      const Flow f = exec(*n.kids[1], out);
      scopes_.pop_back();
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  void bind(const Node& n, const Value& item) {
    if (n.targets.size() == 1) {
      scopes_.back()[n.targets[0]] = item;
      return;
    }
    DS_CHECK(item.kind == Kind::List && item.list->size() == n.targets.size(), "template line ", n.line,
             ": cannot unpack loop item into ", n.targets.size(), " names");
    for (size_t k = 0; k < n.targets.size(); ++k) scopes_.back()[n.targets[k]] = (*item.list)[k];
  }

  Value call(const Node& n) {
    std::vector<Value> args;
    Dict kwargs;
    const size_t nargs = n.kids.size() - 1, npos = nargs - n.kwnames.size();
    for (size_t k = 1; k <= nargs; ++k) {
      Value v = eval(*n.kids[k]);
      if (k - 1 < npos) args.push_back(std::move(v));
      else kwargs.push_back({n.kwnames[k - 1 - npos], std::move(v)});
    }
    const Node& callee = *n.kids[0];
    if (callee.kind == NodeKind::GetAttr) {
      Value obj = eval(*callee.kids[0]);
      DS_CHECK(!obj.is_undefined(), "template line ", n.line, ": '", describe(*callee.kids[0]), "' is undefined (calling .",
               callee.name, "())");
      return call_method(obj, callee.name, args, n.line);
    }
    DS_CHECK(callee.kind == NodeKind::Name, "template line ", n.line, ": only functions and methods can be called");
    const std::string& f = callee.name;
    if (f == "namespace" || f == "dict") {
      Value v = Value::make_dict();
      if (f == "namespace") v.kind = Kind::Namespace;
      for (auto& [k, x] : kwargs) set_member(*v.dict, k, std::move(x));
      return v;
    }
    if (f == "raise_exception") {
      fail("chat template raised an exception: ", args.empty() ? std::string() : to_text(args[0]).s);
    }
    if (f == "range") return make_range(args, n.line);
    if (f == "strftime_now") {
      DS_CHECK(!args.empty() && args[0].kind == Kind::String, "template line ", n.line, ": strftime_now(format)");
      char buf[256];
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      const size_t w = std::strftime(buf, sizeof(buf), args[0].str->s.c_str(), &tm);
      return Value::plain(std::string(buf, w));
    }
    fail("template line ", n.line, ": unknown function '", f, "'");
  }

  const Limits& lim_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  size_t steps_ = 0, depth_ = 0;
};

}  // namespace

Template::Template(const std::string& source, Limits limits) : limits_(limits) {
  DS_CHECK(source.size() <= limits_.max_template_bytes, "template: ", source.size(), " bytes exceeds the limit of ",
           limits_.max_template_bytes);
  root_ = parse_template(source, limits_.max_depth);
}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

TString Template::render(const std::vector<std::pair<std::string, Value>>& globals) const {
  Evaluator ev(limits_);
  std::unordered_map<std::string, Value> g;
  for (const auto& [k, v] : globals) g[k] = v;
  ev.push(std::move(g));
  ev.push();  // template-level `set` writes here
  TString out;
  ev.exec(*root_, out);
  return out;
}

}  // namespace ds::tok::jinja

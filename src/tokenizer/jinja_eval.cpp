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
        check_output(out, n.name.size());
        out.append_plain(n.name);
        return Flow::Normal;
      case NodeKind::Output: {
        const Value v = eval(*n.kids[0]);
        if (v.kind == Kind::String) {  // appended in place, without a copy
          check_output(out, v.str->s.size());
          out.append(*v.str);
        } else {
          const TString t = to_text(v);
          check_output(out, t.s.size());
          out.append(t);
        }
        return Flow::Normal;
      }
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
          // A namespace inside a namespace could make a cycle (a leak, and endless printing): never needed.
          DS_CHECK(!v.holds_ns, "template line ", n.line, ": a namespace cannot be stored in a namespace attribute");
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
        if (n.name == "-") return unary_minus(v, n.line);
        if (v.kind == Kind::Int || v.kind == Kind::Float) return v;
        fail("template line ", n.line, ": unary ", n.name, " on a ", kind_name(v.kind));
      }
      case NodeKind::Binary: {
        Value a = eval(*n.kids[0]);
        return binary(n.name, a, eval(*n.kids[1]), n.line);
      }
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

  void step(const Node& n) { charge_step(n.line); }
  // Checked before appending, so the output never grows past the cap.
  void check_output(const TString& out, size_t more) const {
    DS_CHECK(more <= lim_.max_output_bytes && out.s.size() <= lim_.max_output_bytes - more, "chat template: output of ",
             out.s.size(), " + ", more, " bytes exceeds the limit of ", lim_.max_output_bytes, " bytes (max_output_bytes)");
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
    // Lists are immutable once made: iterate the list itself (kept alive by `seq`), not a copy of it.
    std::shared_ptr<const List> owned;
    if (seq.kind == Kind::List) {
      owned = seq.list;
    } else if (seq.kind == Kind::Dict) {
      List keys;
      for (const auto& kv : *seq.dict) keys.push_back(Value::plain(kv.first));
      owned = Value::make_list(std::move(keys)).list;
    } else if (seq.kind == Kind::String) {
      owned = Value::make_list(string_chars(*seq.str)).list;
    } else if (!seq.is_undefined() && seq.kind != Kind::None) {
      fail("template line ", n.line, ": cannot iterate over a ", kind_name(seq.kind));
    } else {
      DS_CHECK(seq.is_undefined(), "template line ", n.line, ": cannot iterate over none");
      owned = std::make_shared<const List>();
    }
    const Node* cond = n.kids[3].get();
    if (cond) {  // `for x in xs if c`: filter first, so loop.* counts only the kept items
      List kept;
      for (const auto& it : *owned) {
        push();
        bind(n, it);
        if (eval(*cond).truthy()) kept.push_back(it);
        scopes_.pop_back();
      }
      owned = Value::make_list(std::move(kept)).list;
    }
    const List& items = *owned;
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
      scopes_.back()["loop"] = Value::make_dict(std::move(loop), /*counted=*/false);
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
      Dict d;
      for (auto& [k, x] : kwargs) {
        DS_CHECK(f == "dict" || !x.holds_ns, "template line ", n.line, ": a namespace cannot be stored in a namespace");
        set_member(d, k, std::move(x));
      }
      Value v = Value::make_dict(std::move(d));
      if (f == "namespace") {
        v.kind = Kind::Namespace;
        v.holds_ns = true;
      }
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
  size_t depth_ = 0;
};

}  // namespace

Template::Template(const std::string& source, Limits limits) : limits_(limits) {
  DS_CHECK(source.size() <= limits_.max_template_bytes, "template: ", source.size(), " bytes exceeds the limit of ",
           limits_.max_template_bytes);
  root_ = parse_template(source, limits_.max_depth, std::max<size_t>(limits_.max_template_bytes / 16, 1024));
}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

TString Template::render(const std::vector<std::pair<std::string, Value>>& globals, RenderStats* stats) const {
  Budget budget;
  budget.max_bytes = limits_.max_value_bytes;
  budget.max_steps = limits_.max_steps;
  budget.max_depth = std::min(limits_.max_value_depth, kMaxValueDepthCap);
  budget.cancel = limits_.cancel;
  TString out;
  {
    // Every value the render makes dies inside this block (with the evaluator's scopes), under the budget.
    const BudgetScope scope(budget);
    Evaluator ev(limits_);
    std::unordered_map<std::string, Value> g;
    for (const auto& [k, v] : globals) g[k] = v;
    ev.push(std::move(g));
    ev.push();  // template-level `set` writes here
    ev.exec(*root_, out);
  }
  if (stats) *stats = {budget.steps, budget.bytes, out.s.size()};
  return out;
}

}  // namespace ds::tok::jinja

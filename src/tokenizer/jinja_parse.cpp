// SPDX-License-Identifier: MIT
// Jinja parser: chunks and tokens (jinja_lex.h) -> Node tree (jinja_ast.h): statements by recursive descent,
// expressions with Jinja's precedence (or, and, not, comparisons, ~, + -, * / // %, unary, postfix, filters, tests).
#include <algorithm>
#include <cctype>
#include <cstring>

#include "base/error.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lex.h"
#include "tokenizer/unicode.h"

namespace ds::tok::jinja {

Node::~Node() {
  std::vector<std::unique_ptr<Node>> pending;
  for (auto& k : kids) if (k) pending.push_back(std::move(k));
  while (!pending.empty()) {
    std::unique_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    for (auto& k : n->kids) if (k) pending.push_back(std::move(k));
  }  // each node is destroyed with its kids already moved out
}

namespace {

// Every syntax node costs ~200 bytes, and `1+1+...` makes one per source byte: the tree's size is capped too.
struct NodeCount {
  size_t n = 0, max;
  void add() { DS_CHECK(++n <= max, "template: more than ", max, " syntax nodes (max_template_bytes / 16)"); }
};

class ExprParser {
 public:
  ExprParser(std::vector<Tok> toks, size_t line, size_t max_depth, NodeCount& nodes)
      : t_(std::move(toks)), line_(line), max_depth_(max_depth), nodes_(nodes) {}

  const Tok& peek(size_t k = 0) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  bool at_end() const { return peek().kind == TokKind::End; }
  bool is_op(const char* op, size_t k = 0) const { return peek(k).kind == TokKind::Op && peek(k).text == op; }
  bool is_name(const char* n, size_t k = 0) const { return peek(k).kind == TokKind::Name && peek(k).text == n; }
  void expect_op(const char* op) {
    DS_CHECK(is_op(op), "template line ", line_, ": expected '", op, "' near '", peek().text, "'");
    ++p_;
  }
  std::string expect_name() {
    DS_CHECK(peek().kind == TokKind::Name, "template line ", line_, ": expected a name near '", peek().text, "'");
    return t_[p_++].text;
  }
  void expect_end() { DS_CHECK(at_end(), "template line ", line_, ": unexpected '", peek().text, "'"); }

  NodePtr node(NodeKind k, std::string name = {}) {
    nodes_.add();
    auto n = std::make_unique<Node>();
    n->kind = k;
    n->name = std::move(name);
    n->line = line_;
    return n;
  }

  NodePtr expression_no_cond() { return or_expr(); }
  NodePtr expression() {
    Guard g(*this);
    NodePtr e = or_expr();
    if (is_name("if")) {
      ++p_;
      auto c = node(NodeKind::Cond);
      c->kids.push_back(std::move(e));
      c->kids.push_back(or_expr());
      if (is_name("else")) {
        ++p_;
        c->kids.push_back(expression());
      } else {
        c->kids.push_back(nullptr);
      }
      return c;
    }
    return e;
  }

 private:
  struct Guard {
    ExprParser& p;
    explicit Guard(ExprParser& q) : p(q) {
      DS_CHECK(++p.depth_ < p.max_depth_, "template line ", p.line_, ": expression nested too deeply");
    }
    ~Guard() { --p.depth_; }
  };
  NodePtr bin(NodeKind k, std::string op, NodePtr a, NodePtr b) {
    auto n = node(k, std::move(op));
    n->kids.push_back(std::move(a));
    n->kids.push_back(std::move(b));
    return n;
  }
  NodePtr or_expr() {
    NodePtr a = and_expr();
    while (is_name("or")) { ++p_; a = bin(NodeKind::Or, "or", std::move(a), and_expr()); }
    return a;
  }
  NodePtr and_expr() {
    NodePtr a = not_expr();
    while (is_name("and")) { ++p_; a = bin(NodeKind::And, "and", std::move(a), not_expr()); }
    return a;
  }
  NodePtr not_expr() {
    if (is_name("not")) {
      Guard g(*this);
      ++p_;
      auto n = node(NodeKind::Not);
      n->kids.push_back(not_expr());
      return n;
    }
    return compare();
  }
  NodePtr compare() {
    NodePtr a = concat();
    while (true) {
      static const char* ops[] = {"==", "!=", "<=", ">=", "<", ">"};
      std::string op;
      for (const char* o : ops) if (is_op(o)) op = o;
      if (!op.empty()) { ++p_; }
      else if (is_name("in")) { op = "in"; ++p_; }
      else if (is_name("not") && is_name("in", 1)) { op = "notin"; p_ += 2; }
      else break;
      a = bin(NodeKind::Binary, op, std::move(a), concat());
    }
    return a;
  }
  NodePtr concat() {
    NodePtr a = add();
    while (is_op("~")) { ++p_; a = bin(NodeKind::Binary, "~", std::move(a), add()); }
    return a;
  }
  NodePtr add() {
    NodePtr a = mul();
    while (is_op("+") || is_op("-")) { std::string op = t_[p_++].text; a = bin(NodeKind::Binary, op, std::move(a), mul()); }
    return a;
  }
  NodePtr mul() {
    NodePtr a = pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = t_[p_++].text;
      a = bin(NodeKind::Binary, op, std::move(a), pow());
    }
    return a;
  }
  // As Jinja: `**` binds tighter than * and looser than unary minus (-2 ** 2 == 4), left to right.
  NodePtr pow() {
    NodePtr a = unary();
    while (is_op("**")) { ++p_; a = bin(NodeKind::Binary, "**", std::move(a), unary()); }
    return a;
  }
  NodePtr unary() {
    if (is_op("-") || is_op("+")) {
      Guard g(*this);
      auto n = node(NodeKind::Unary, t_[p_++].text);
      n->kids.push_back(unary());
      return n;
    }
    return postfix_and_filters(primary());
  }
  void call_args(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().kind == TokKind::Name && is_op("=", 1)) {
        n.kwnames.push_back(t_[p_].text);
        p_ += 2;
      } else {
        DS_CHECK(n.kwnames.empty(), "template line ", line_, ": positional argument after keyword argument");
      }
      n.kids.push_back(expression());
      if (!is_op(")")) expect_op(",");
    }
    ++p_;
  }
  NodePtr postfix_and_filters(NodePtr e) {
    while (true) {
      if (is_op(".")) {
        ++p_;
        auto n = node(NodeKind::GetAttr, expect_name());
        n->kids.push_back(std::move(e));
        e = std::move(n);
      } else if (is_op("[")) {
        ++p_;
        NodePtr parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!is_op(":") && !is_op("]")) parts[k] = expression();
          if (k < 2 && is_op(":")) { ++p_; slice = true; } else break;
        }
        expect_op("]");
        auto n = node(slice ? NodeKind::Slice : NodeKind::GetItem);
        n->kids.push_back(std::move(e));
        if (slice) for (auto& x : parts) n->kids.push_back(std::move(x));
        else {
          DS_CHECK(parts[0] != nullptr, "template line ", line_, ": empty subscript");
          n->kids.push_back(std::move(parts[0]));
        }
        e = std::move(n);
      } else if (is_op("(")) {
        auto n = node(NodeKind::Call);
        n->kids.push_back(std::move(e));
        call_args(*n);
        e = std::move(n);
      } else if (is_op("|")) {
        ++p_;
        auto n = node(NodeKind::Filter, expect_name());
        n->kids.push_back(std::move(e));
        if (is_op("(")) call_args(*n);
        e = std::move(n);
      } else if (is_name("is")) {
        ++p_;
        auto n = node(NodeKind::Test);
        if (is_name("not")) { ++p_; n->negate = true; }
        n->name = expect_name();
        n->kids.push_back(std::move(e));
        if (is_op("(")) call_args(*n);
        else if (peek().kind == TokKind::Str || peek().kind == TokKind::Int || (peek().kind == TokKind::Name &&
                 !is_name("and") && !is_name("or") && !is_name("if") && !is_name("else") && !is_name("in") && !is_name("not")))
          n->kids.push_back(primary());  // `is sameas x` / `is equalto 3`
        e = std::move(n);
      } else {
        return e;
      }
    }
  }
  NodePtr primary() {
    Guard g(*this);
    const Tok& t = peek();
    if (t.kind == TokKind::Str) {
      std::string s = t_[p_++].text;
      while (peek().kind == TokKind::Str) s += t_[p_++].text;  // adjacent literals concatenate
      auto n = node(NodeKind::Literal);
      n->literal = Value::plain(std::move(s));
      return n;
    }
    if (t.kind == TokKind::Int || t.kind == TokKind::Float) {
      auto n = node(NodeKind::Literal);
      try {
        n->literal = t.kind == TokKind::Int ? Value::integer(std::stoll(t.text)) : Value::number(std::stod(t.text));
      } catch (const std::exception&) {
        fail("template line ", line_, ": bad number '", t.text, "'");
      }
      ++p_;
      return n;
    }
    if (t.kind == TokKind::Name) {
      const std::string name = t_[p_++].text;
      auto n = node(NodeKind::Literal);
      if (name == "true" || name == "True") n->literal = Value::boolean(true);
      else if (name == "false" || name == "False") n->literal = Value::boolean(false);
      else if (name == "none" || name == "None") n->literal = Value::none();
      else return node(NodeKind::Name, name);
      return n;
    }
    if (is_op("(")) {
      ++p_;
      NodePtr e = expression();
      if (is_op(",")) {  // a tuple: treated as a list
        auto l = node(NodeKind::ListLit);
        l->kids.push_back(std::move(e));
        while (is_op(",")) { ++p_; if (is_op(")")) break; l->kids.push_back(expression()); }
        e = std::move(l);
      }
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      ++p_;
      auto l = node(NodeKind::ListLit);
      while (!is_op("]")) { l->kids.push_back(expression()); if (!is_op("]")) expect_op(","); }
      ++p_;
      return l;
    }
    if (is_op("{")) {
      ++p_;
      auto d = node(NodeKind::DictLit);
      while (!is_op("}")) {
        d->kids.push_back(expression());
        expect_op(":");
        d->kids.push_back(expression());
        if (!is_op("}")) expect_op(",");
      }
      ++p_;
      return d;
    }
    fail("template line ", line_, ": unexpected '", t.text, "' in expression");
  }

  std::vector<Tok> t_;
  size_t p_ = 0, line_, max_depth_, depth_ = 0;
  NodeCount& nodes_;
};

class StmtParser {
 public:
  StmtParser(std::vector<Chunk> chunks, size_t max_depth, size_t max_nodes)
      : c_(std::move(chunks)), max_depth_(max_depth) {
    nodes_.max = max_nodes;
  }

  NodePtr body(const std::vector<std::string>& stops, std::string* stopped_at, size_t depth) {
    DS_CHECK(depth < max_depth_, "template: blocks nested too deeply");
    nodes_.add();
    auto b = std::make_unique<Node>();
    b->kind = NodeKind::Body;
    while (i_ < c_.size()) {
      const Chunk& ch = c_[i_];
      if (ch.kind == ChunkKind::Text) {
        nodes_.add();
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::Text;
        n->name = ch.text;
        b->kids.push_back(std::move(n));
        ++i_;
        continue;
      }
      ExprParser ep(lex(ch.text, ch.line, nodes_.max), ch.line, max_depth_, nodes_);
      if (ch.kind == ChunkKind::Var) {
        auto n = ep.node(NodeKind::Output);
        n->kids.push_back(ep.expression());
        ep.expect_end();
        b->kids.push_back(std::move(n));
        ++i_;
        continue;
      }
      const std::string kw = ep.expect_name();
      for (const auto& s : stops) {
        if (kw == s) {
          if (stopped_at) *stopped_at = kw;
          return b;  // the caller consumes the stop tag
        }
      }
      ++i_;
      if (kw == "if") {
        auto n = ep.node(NodeKind::If);
        n->kids.push_back(ep.expression());
        ep.expect_end();
        while (true) {
          std::string stop;
          n->kids.push_back(body({"elif", "else", "endif"}, &stop, depth + 1));
          DS_CHECK(i_ < c_.size(), "template: missing {% endif %} for the if at line ", ch.line);
          const Chunk& sc = c_[i_++];
          ExprParser sp(lex(sc.text, sc.line, nodes_.max), sc.line, max_depth_, nodes_);
          sp.expect_name();
          if (stop == "elif") { n->kids.push_back(sp.expression()); sp.expect_end(); continue; }
          sp.expect_end();
          if (stop == "else") {
            n->kids.push_back(body({"endif"}, &stop, depth + 1));
            DS_CHECK(i_ < c_.size(), "template: missing {% endif %} for the if at line ", ch.line);
            ++i_;
          }
          break;
        }
        b->kids.push_back(std::move(n));
      } else if (kw == "for") {
        auto n = ep.node(NodeKind::For);
        n->targets.push_back(ep.expect_name());
        while (ep.is_op(",")) { ep.expect_op(","); n->targets.push_back(ep.expect_name()); }
        DS_CHECK(ep.is_name("in"), "template line ", ch.line, ": expected 'in' in for");
        ep.expect_name();
        n->kids.push_back(ep.expression_no_cond());
        NodePtr cond;
        if (ep.is_name("if")) { ep.expect_name(); cond = ep.expression(); }
        if (ep.is_name("recursive")) fail("template line ", ch.line, ": recursive loops are not supported");
        ep.expect_end();
        std::string stop;
        n->kids.push_back(body({"else", "endfor"}, &stop, depth + 1));
        DS_CHECK(i_ < c_.size(), "template: missing {% endfor %} for the for at line ", ch.line);
        ++i_;
        if (stop == "else") {
          n->kids.push_back(body({"endfor"}, &stop, depth + 1));
          DS_CHECK(i_ < c_.size(), "template: missing {% endfor %} for the for at line ", ch.line);
          ++i_;
        } else {
          n->kids.push_back(nullptr);
        }
        n->kids.push_back(std::move(cond));
        b->kids.push_back(std::move(n));
      } else if (kw == "set") {
        auto n = ep.node(NodeKind::Set);
        n->targets.push_back(ep.expect_name());
        if (ep.is_op(".")) { ep.expect_op("."); n->targets.push_back(ep.expect_name()); }
        DS_CHECK(ep.is_op("="), "template line ", ch.line, ": block {% set %} is not supported");
        ep.expect_op("=");
        n->kids.push_back(ep.expression());
        ep.expect_end();
        b->kids.push_back(std::move(n));
      } else if (kw == "break" || kw == "continue") {
        ep.expect_end();
        b->kids.push_back(ep.node(kw == "break" ? NodeKind::Break : NodeKind::Continue));
      } else {
        fail("template line ", ch.line, ": unsupported tag '", kw, "'");
      }
    }
    DS_CHECK(stops.empty(), "template: unexpected end of template (missing {% end", stops.back(), " %}?)");
    return b;
  }

 private:
  std::vector<Chunk> c_;
  size_t i_ = 0, max_depth_;
  NodeCount nodes_;
};

}  // namespace

NodePtr parse_template(const std::string& src, size_t max_depth, size_t max_nodes) {
  StmtParser p(split_chunks(src), max_depth, max_nodes);
  return p.body({}, nullptr, 0);
}

}  // namespace ds::tok::jinja

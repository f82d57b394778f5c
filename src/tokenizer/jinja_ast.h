// SPDX-License-Identifier: MIT
// Internal: syntax tree of the Jinja interpreter (shared by jinja_parse.cpp and jinja_eval.cpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace ds::tok::jinja {

enum class NodeKind {
  // statements
  Body, Text, Output, If, For, Set, Break, Continue,
  // expressions
  Literal, Name, GetAttr, GetItem, Slice, Call, Filter, Test, Unary, Binary, And, Or, Not, Cond, ListLit, DictLit,
};

struct Node {
  NodeKind kind;
  std::string name;  // Text content, Name, attribute, filter/test/function name, operator
  Value literal;
  std::vector<std::unique_ptr<Node>> kids;  // operands / statements / arguments
  std::vector<std::string> kwnames;         // Call/Filter: names of the trailing keyword arguments
  std::vector<std::string> targets;         // For: loop variable names; Set: target (name or ns, attr)
  bool negate = false;                      // Test: `is not`
  size_t line = 0;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Iterative: `1+1+1+...` or `x|trim|trim|...` parse into trees as deep as they are long, which a recursive
  // destructor would follow down to a stack overflow.
  ~Node();
};

using NodePtr = std::unique_ptr<Node>;

// Parses template source (with trim_blocks + lstrip_blocks) into a Body node of at most max_nodes nodes.
NodePtr parse_template(const std::string& src, size_t max_depth, size_t max_nodes);

}  // namespace ds::tok::jinja

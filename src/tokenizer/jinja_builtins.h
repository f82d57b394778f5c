// SPDX-License-Identifier: MIT
// Internal: operators, filters, tests and methods of the Jinja interpreter (Python semantics where the
// chat templates depend on them: str.split/strip, negative indices, `in`, truthiness).
#pragma once
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace ds::tok::jinja {

void set_member(Dict& d, const std::string& key, Value v);
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key, size_t line);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, size_t line);
// Integer operators are exact 64-bit and throw ds::Error on overflow, zero divisors and INT64_MIN // -1.
Value binary(const std::string& op, const Value& a, const Value& b, size_t line);
Value unary_minus(const Value& v, size_t line);
Value apply_filter(const std::string& name, const Value& v, const std::vector<Value>& args, size_t line);
bool apply_test(const std::string& name, const Value& v, const std::vector<Value>& args, size_t line);
Value call_method(const Value& obj, const std::string& name, const std::vector<Value>& args, size_t line);
Value make_range(const std::vector<Value>& args, size_t line);
List string_chars(const TString& s);  // one string per code point
bool has_taint(const Value& v);

}  // namespace ds::tok::jinja

// SPDX-License-Identifier: MIT
// Constrained decoding for OpenAI `response_format` (docs/SERVER.md, "Structured output"). A JsonGrammar is a
// byte-level pushdown automaton: any JSON object (json_object) or the values a JSON schema allows (json_schema; the
// supported subset is listed at JsonGrammar::from_schema). Its state is a small stack of frames, copied cheaply.
// TokenVocab holds the vocabulary's byte strings as a trie in preorder, so the tokens a state allows are found in
// one pass that skips every subtree whose prefix is refused. JsonConstraint ties both to the scheduler's
// rt::LogitConstraint: no token that would break the JSON, the end of sequence only once the value is complete, and
// with R1-style prompts nothing is masked until the reasoning closes (only the end of sequence, so that an answer
// comes).
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/constraint.h"
#include "tokenizer/tokenizer.h"

namespace ds::server {

// A schema the grammar cannot enforce: `keyword` names what is unsupported, `path` where (JSON pointer, "#/...").
struct SchemaError : std::runtime_error {
  std::string keyword, path;
  SchemaError(std::string message, std::string keyword_, std::string path_)
      : std::runtime_error(std::move(message)), keyword(std::move(keyword_)), path(std::move(path_)) {}
};

struct JsonState {
  static constexpr int kMaxDepth = 20;  // frames: the root, every open container and the scalar inside
  struct Frame {
    uint64_t mask = 0;   // object: the properties whose key still matches the bytes so far
    uint32_t node = 0;
    uint32_t n = 0;      // array: items; string: characters; number: digits of the part; literal/key: position
    uint32_t next = 0;   // object: the first property that may still come
    uint8_t phase = 0;
    uint8_t pending = 0; // string: UTF-8 continuation bytes (or \u hex digits) still due
    uint8_t lo = 0x80, hi = 0xBF;  // string: the range of the next continuation byte
  };
  uint8_t depth = 0;
  uint8_t ws = 0;        // whitespace bytes in a row
  bool failed = false;   // a byte was refused: nothing is accepted any more
  Frame f[kMaxDepth];

  // Copies only the frames in use.
  void copy_from(const JsonState& o) {
    depth = o.depth, ws = o.ws, failed = o.failed;
    std::copy(o.f, o.f + o.depth, f);
  }
};

class JsonGrammar {
 public:
  // Any JSON object (keys any strings, values any JSON), nested at most JsonState::kMaxDepth - 2 deep.
  static std::shared_ptr<const JsonGrammar> any_object();
  // The values `schema` allows. Supported: type (one or a list), object (properties emitted in their order,
  // required, additionalProperties false/true/absent: no other key is generated), array (items, minItems,
  // maxItems), string (minLength, maxLength), number, integer, boolean, null, enum, const, anyOf (alternatives that
  // start with different characters; enum/const ones are merged), $ref to #/$defs/... or #/definitions/... (not
  // recursive); annotations (title, description, default, examples, $schema, $id, $comment, deprecated, readOnly,
  // writeOnly) are ignored. `strict`: every object with properties must require all of them and set
  // additionalProperties false (as OpenAI's strict mode). Anything else throws SchemaError naming it.
  static std::shared_ptr<const JsonGrammar> from_schema(const nlohmann::ordered_json& schema, bool strict);

  JsonState start() const;
  bool accept(JsonState& s, uint8_t byte) const;
  // The bytes so far are one whole value (nothing more is needed; a number could still take digits).
  bool complete(const JsonState& s) const;
  bool accept(JsonState& s, const std::string& bytes) const {
    for (unsigned char b : bytes)
      if (!accept(s, b)) return false;
    return true;
  }

  enum class Kind : uint8_t { Object, AnyObject, Array, String, Number, Literal, Choice };
  struct Node {
    Kind kind = Kind::Literal;
    bool integer = false;                  // Number: no fraction, no exponent
    std::vector<std::string> keys;         // Object: each property's key as JSON text, with its quotes
    std::vector<uint32_t> values;          // Object: property value nodes; Choice: the alternatives
    std::vector<bool> required;            // Object
    uint32_t items = 0;                    // Array: the item node; AnyObject: the value node
    uint32_t key = 0;                      // AnyObject: the key string node
    uint32_t min = 0, max = UINT32_MAX;    // Array: items; String: characters
    std::vector<std::string> literals;     // Literal: the values as JSON text
    std::vector<int32_t> first;            // Choice: [256] the alternative a first byte starts (-1: none)
  };

 private:
  friend class SchemaCompiler;
  // What a frame does with a byte: takes it, takes it as whitespace between tokens, takes it and ends, ends before
  // it (the parent gets it), pushed a child that gets it, or refuses it.
  enum class Step { Take, Space, Close, Pass, Push, Reject };
  Step step(JsonState& s, uint8_t b, bool ws) const;
  bool push_value(JsonState& s, uint32_t node, uint8_t b) const;
  bool endable(const JsonState::Frame& f) const;
  std::vector<Node> nodes_;
  uint32_t root_ = 0;
};

// The vocabulary as a JSON constraint sees it: every token's bytes (added and special tokens excluded: never JSON),
// the end-of-sequence ids, and `</think>`'s id when the vocabulary has it as one token.
class TokenVocab {
 public:
  TokenVocab(const tok::Tokenizer& tok, int64_t vocab, std::vector<int32_t> eos);
  // ok[id] = 1 for every token whose bytes `g` accepts from `s` (ok: [vocab], zeroed by the caller); `scratch` holds
  // one state per trie depth.
  void allowed(const JsonGrammar& g, const JsonState& s, uint8_t* ok, std::vector<JsonState>& scratch) const;
  const std::string& piece(int32_t id) const { return pieces_[size_t(id)]; }
  int64_t size() const { return int64_t(pieces_.size()); }
  const std::vector<int32_t>& eos() const { return eos_; }
  int32_t think_end() const { return think_end_; }

 private:
  std::vector<std::string> pieces_;  // [vocab]; empty: never allowed
  std::vector<int32_t> eos_;
  int32_t think_end_ = -1;
  // The trie in preorder: node i holds byte_[i] at depth depth_[i] (1-based); its subtree ends before end_[i].
  std::vector<uint8_t> byte_;
  std::vector<uint16_t> depth_;
  std::vector<uint32_t> end_;
  std::vector<std::pair<uint32_t, int32_t>> ends_;  // (node, token id) sorted by node: tokens that end there
  size_t max_len_ = 0;
};

class JsonConstraint final : public rt::LogitConstraint {
 public:
  // `in_reasoning`: the prompt leaves the model inside <think>; the JSON starts after </think>.
  JsonConstraint(std::shared_ptr<const JsonGrammar> g, std::shared_ptr<const TokenVocab> v, bool in_reasoning);
  std::unique_ptr<rt::LogitConstraint> clone() const override;
  void mask(float* logits, int64_t vocab) override;
  void advance(int32_t token) override;
  const JsonState& state() const { return state_; }
  bool in_reasoning() const { return reasoning_; }

 private:
  std::shared_ptr<const JsonGrammar> g_;
  std::shared_ptr<const TokenVocab> v_;
  JsonState state_;
  bool reasoning_;
  std::string tail_;                // reasoning without a </think> token: the last bytes, to find the text
  std::vector<uint8_t> ok_;
  std::vector<JsonState> scratch_;
};

}  // namespace ds::server

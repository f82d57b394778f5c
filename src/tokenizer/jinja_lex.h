// SPDX-License-Identifier: MIT
// Internal: Jinja lexing. Splits template source into text / {{ }} / {% %} chunks (applying whitespace control,
// trim_blocks and lstrip_blocks as Hugging Face configures Jinja) and tokenizes tag contents.
#pragma once
#include <string>
#include <vector>

namespace ds::tok::jinja {

enum class ChunkKind { Text, Var, Block };
struct Chunk {
  ChunkKind kind;
  std::string text;  // text, or tag content
  size_t line;
};

enum class TokKind { Name, Int, Float, Str, Op, End };
struct Tok {
  TokKind kind;
  std::string text;
};

std::vector<Chunk> split_chunks(const std::string& src);
// At most max_tokens tokens (the parser's node cap: each token costs ~40 bytes before it becomes a node).
std::vector<Tok> lex(const std::string& s, size_t line, size_t max_tokens);

}  // namespace ds::tok::jinja

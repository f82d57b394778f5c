// SPDX-License-Identifier: MIT
// Jinja lexing (see jinja_lex.h).
#include "tokenizer/jinja_lex.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace ds::tok::jinja {

namespace {


size_t find_tag_end(const std::string& s, size_t pos, const char* close) {
  char quote = 0;
  for (size_t i = pos; i + 1 < s.size(); ++i) {
    const char c = s[i];
    if (quote) {
      if (c == '\\') ++i;
      else if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == close[0] && s[i + 1] == close[1]) {
      return i;
    }
  }
  return std::string::npos;
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// ---- expression tokens ----

std::string unescape(const std::string& s, size_t line) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) { out += s[i]; continue; }
    const char c = s[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '0': out += '\0'; break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case '\n': break;
      case 'x': case 'u': case 'U': {
        const size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        const std::string hex = s.substr(i + 1, n);
        DS_CHECK(hex.size() == n && hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos,
                 "template line ", line, ": bad \\", c, " escape");
        const uint32_t cp = static_cast<uint32_t>(std::stoul(hex, nullptr, 16));
        DS_CHECK(cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF), "template line ", line, ": bad code point");
        append_utf8(out, cp);
        i += n;
        break;
      }
      default: out += '\\'; out += c;  // Python keeps unknown escapes
    }
  }
  return out;
}

}  // namespace

std::vector<Chunk> split_chunks(const std::string& src) {
  std::vector<Chunk> out;
  size_t pos = 0, line = 1;
  bool strip_next = false;  // the previous tag ended with '-'
  bool trim_nl = false;     // trim_blocks: drop one '\n' after a block/comment tag
  while (pos <= src.size()) {
    size_t open = pos;
    while (true) {
      open = src.find('{', open);
      if (open == std::string::npos || open + 1 >= src.size()) { open = std::string::npos; break; }
      const char n = src[open + 1];
      if (n == '{' || n == '%' || n == '#') break;
      ++open;
    }
    const size_t text_end = open == std::string::npos ? src.size() : open;
    std::string text = src.substr(pos, text_end - pos);
    // Jinja's "line_starting": the previous tag's match (with the whitespace it swallowed) ended a line.
    bool line_start = pos == 0;
    if (strip_next) {
      size_t k = 0;
      while (k < text.size() && is_ws(text[k])) ++k;
      line_start = k > 0 && text[k - 1] == '\n';
      text.erase(0, k);
    } else if (trim_nl && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
      line_start = true;
    }
    if (open != std::string::npos) {
      const char kind = src[open + 1];
      const char sign = open + 2 < src.size() ? src[open + 2] : 0;
      if (sign == '-') {
        while (!text.empty() && is_ws(text.back())) text.pop_back();
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks applies to block and comment tags
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_start) && l_pos < text.size() &&
            text.find_first_not_of(" \t", l_pos) == std::string::npos)
          text.erase(l_pos);
      }
    }
    for (char c : text) line += c == '\n';
    if (!text.empty()) out.push_back({ChunkKind::Text, text, line});
    if (open == std::string::npos) break;
    const char kind = src[open + 1];
    const char* close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    const size_t end = kind == '#' ? src.find("#}", open + 2) : find_tag_end(src, open + 2, close);
    DS_CHECK(end != std::string::npos, "template line ", line, ": unclosed tag");
    size_t cb = open + 2, ce = end;
    if (cb < ce && (src[cb] == '-' || src[cb] == '+')) ++cb;
    strip_next = ce > cb && src[ce - 1] == '-';
    if (strip_next) --ce;
    const std::string content = src.substr(cb, ce - cb);
    for (char c : content) line += c == '\n';
    if (kind != '#') out.push_back({kind == '{' ? ChunkKind::Var : ChunkKind::Block, content, line});
    trim_nl = kind != '{';
    pos = end + 2;
  }
  return out;
}

std::vector<Tok> lex(const std::string& s, size_t line, size_t max_tokens) {
  std::vector<Tok> out;
  size_t i = 0;
  while (i < s.size()) {
    DS_CHECK(out.size() < max_tokens, "template line ", line, ": a tag of more than ", max_tokens,
             " tokens (max_template_bytes / 16)");
    const char c = s[i];
    if (is_ws(c)) { ++i; continue; }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({TokKind::Name, s.substr(i, j - i)});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool flt = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_' ||
                              (s[j] == '.' && !flt && j + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[j + 1]))))) {
        flt |= s[j] == '.';
        ++j;
      }
      std::string num = s.substr(i, j - i);
      num.erase(std::remove(num.begin(), num.end(), '_'), num.end());
      out.push_back({flt ? TokKind::Float : TokKind::Int, num});
      i = j;
    } else if (c == '\'' || c == '"') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != c) j += s[j] == '\\' ? 2 : 1;
      DS_CHECK(j < s.size(), "template line ", line, ": unterminated string");
      out.push_back({TokKind::Str, unescape(s.substr(i + 1, j - i - 1), line)});
      i = j + 1;
    } else {
      static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "|", ".", ",", ":",
                                  "(", ")", "[", "]", "{", "}", "<", ">", "="};
      bool found = false;
      for (const char* op : ops) {
        const size_t n = std::strlen(op);
        if (s.compare(i, n, op) == 0) {
          out.push_back({TokKind::Op, op});
          i += n;
          found = true;
          break;
        }
      }
      DS_CHECK(found, "template line ", line, ": unexpected character '", c, "'");
    }
  }
  out.push_back({TokKind::End, ""});
  return out;
}


}  // namespace ds::tok::jinja

// SPDX-License-Identifier: MIT
// Strict JSON reading: size cap, UTF-8 and depth pre-scan, duplicate-key detection during the parse, and parse
// errors reported with nlohmann's position text. nlohmann exceptions never escape (exceptions-off API).
#include "io/json_util.h"

#include <unordered_set>
#include <vector>

#include "base/error.h"
#include "io/mmap_file.h"

namespace ds::io {

namespace {

// Deepest nesting of objects/arrays outside string literals. Stops counting once past the limit.
int max_depth(std::string_view s) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // skip the escaped character
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > deepest) deepest = depth;
      if (deepest > kMaxJsonDepth) return deepest;
    } else if ((c == '}' || c == ']') && depth > 0)
      --depth;
  }
  return deepest;
}

// SAX handler that accepts everything and records the first parse error's text.
struct ErrorCapture {
  std::string error;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(Json::number_integer_t) { return true; }
  bool number_unsigned(Json::number_unsigned_t) { return true; }
  bool number_float(Json::number_float_t, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(Json::binary_t&) { return true; }
  bool start_object(std::size_t) { return true; }
  bool key(std::string&) { return true; }
  bool end_object() { return true; }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    error = ex.what();
    return false;
  }
};

}  // namespace

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else
      return false;  // continuation byte, overlong 2-byte lead, or > U+10FFFF lead
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return false;
    if (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) return false;
    i += len;
  }
  return true;
}

std::string show_text(std::string_view s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += char(c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

Json parse_json_text(std::string_view text, const std::string& label) {
  DS_CHECK(is_valid_utf8(text), label, ": not valid UTF-8");
  DS_CHECK(text.find('\0') == std::string_view::npos, label, ": contains a NUL byte at offset ", text.find('\0'));
  const int depth = max_depth(text);
  DS_CHECK(depth <= kMaxJsonDepth, label, ": JSON nesting deeper than ", kMaxJsonDepth, " levels");

  // One key set per open object; a key seen twice in the same object is recorded and reported after the parse.
  std::vector<std::unordered_set<std::string>> open_objects;
  std::string duplicate;
  auto on_event = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get_ref<const std::string&>()).second && duplicate.empty())
          duplicate = parsed.get_ref<const std::string&>();
        break;
      default:
        break;
    }
    return true;
  };
  Json j = Json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    ErrorCapture cap;
    Json::sax_parse(text.begin(), text.end(), &cap);
    fail(label, ": invalid JSON: ", cap.error.empty() ? std::string("parse error") : cap.error);
  }
  DS_CHECK(duplicate.empty(), label, ": duplicate JSON key '", show_text(duplicate), "'");
  return j;
}

Json read_json_file(const std::string& path, size_t max_bytes) {
  MmapFile f(path);
  DS_CHECK(f.size() <= max_bytes, path, ": file is ", f.size(), " bytes, more than the ", max_bytes,
           "-byte limit for JSON files");
  const std::string_view text(reinterpret_cast<const char*>(f.data()), f.size());
  return parse_json_text(text, path);
}

}  // namespace ds::io

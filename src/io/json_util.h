// SPDX-License-Identifier: MIT
// JSON helpers over nlohmann::json: read a file with a size cap and depth check, typed field access with errors
// that name the file and field.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ds::io {

using Json = nlohmann::json;

// Objects and arrays may nest at most this deep (the top-level value is depth 1).
inline constexpr int kMaxJsonDepth = 64;

// Reads and parses a JSON file (at most `max_bytes`); throws ds::Error naming the file on failure.
// Same rules as parse_json_text.
Json read_json_file(const std::string& path, size_t max_bytes = 64u << 20);

// Parses `text` strictly: valid UTF-8, one JSON value with only whitespace around it, nesting at most
// kMaxJsonDepth, and no object with the same key twice (the JSON spec leaves duplicates undefined; nlohmann
// would keep the last silently). Raw NUL bytes are rejected (nlohmann would stop reading at the first one and
// ignore the rest). Throws ds::Error whose message starts with `label`.
Json parse_json_text(std::string_view text, const std::string& label);

// `s` made safe to put in an error message: control bytes become \xNN and long text is cut to `max` bytes.
std::string show_text(std::string_view s, size_t max = 200);

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace ds::io

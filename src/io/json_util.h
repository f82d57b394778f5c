// SPDX-License-Identifier: MIT
// JSON helpers over nlohmann::json: read a file with a size cap and depth check, typed field access with errors
// that name the file and field.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace ds::io {

using Json = nlohmann::json;

// Reads and parses a JSON file (at most `max_bytes`); throws ds::Error naming the file on failure.
Json read_json_file(const std::string& path, size_t max_bytes = 64u << 20);

}  // namespace ds::io

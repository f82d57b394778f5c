// SPDX-License-Identifier: MIT
// Fuzzes the shard index parser (model.safetensors.index.json -> tensor/shard map, src/io/checkpoint.cpp, S9) and
// the strict JSON reader under it (json_util.cpp: UTF-8, depth, duplicate keys). Every accepted shard name must be
// a plain file name: no path separator, no "..", no control character; the harness aborts if one gets through.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/error.h"
#include "io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const ds::io::Json j = ds::io::parse_json_text(text, "fuzz/model.safetensors.index.json");
    for (const auto& [tensor, file] : ds::io::parse_shard_index(j, "fuzz/model.safetensors.index.json")) {
      if (file.empty() || file.find('/') != std::string::npos || file.find('\\') != std::string::npos ||
          file.find("..") != std::string::npos || file == ".")
        std::abort();  // a path escape the parser should have refused
      for (unsigned char c : file)
        if (c < 0x20) std::abort();
    }
  } catch (const ds::Error&) {
  }
  return 0;
}

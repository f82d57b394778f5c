// SPDX-License-Identifier: MIT
// Fuzzes the GGUF reader (src/io/gguf.cpp, reliability.md G1-G14) on in-memory images. An accepted file must give
// tensors whose data lies inside the image and starts aligned; the harness reads the first and last byte of each,
// so ASan reports a range the reader let out of bounds. Metadata values are read back as the loaders do.
#include <cstdint>
#include <cstdlib>

#include "base/error.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<ds::io::GgufFile> g;
  try {
    g = ds::io::GgufFile::parse(data, size, "fuzz.gguf");
  } catch (const ds::Error&) {
    return 0;
  }
  unsigned sum = 0;
  for (const auto& t : g->tensors()) {
    if (g->tensor(t.name) != &t) std::abort();
    if (t.data < data || t.nbytes > size || t.data + t.nbytes > data + size) std::abort();
    if ((t.data - data) % g->alignment() != 0) std::abort();
    if (t.nbytes > 0) sum += t.data[0] + t.data[t.nbytes - 1];
    (void)t.numel();
  }
  for (const auto& [key, v] : g->metadata()) {
    sum += unsigned(v.size() + v.is_int() + v.s.size());
    if (g->find(key) != &v) std::abort();
  }
  return int(sum & 0);
}

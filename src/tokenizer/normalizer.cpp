// SPDX-License-Identifier: MIT
// NFC normalizer (see normalizer.h).
#include "tokenizer/normalizer.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace ds::tok {

namespace {

// Code points that can make a string change under NFC: non-starters (ccc != 0), characters NFC replaces (singletons
// such as U+212B, composition exclusions such as U+0958), and starters that compose with the character before them
// (Hangul medial/final jamo, U+0B57, U+102E, ...: every ccc-0 element after the first of a canonical decomposition).
// A string without them is already NFC, so most text (ASCII, CJK, precomposed Latin) skips utf8proc entirely.
struct NfcUnsafe {
  std::vector<uint64_t> bits = std::vector<uint64_t>(0x110000 / 64, 0);
  void set(int32_t cp) { bits[size_t(cp) >> 6] |= uint64_t{1} << (cp & 63); }
  bool get(uint32_t cp) const { return (bits[cp >> 6] >> (cp & 63)) & 1; }
  NfcUnsafe() {
    for (int32_t cp = 0x300; cp < 0x110000; ++cp) {
      const utf8proc_property_t* p = utf8proc_get_property(cp);
      if (p->combining_class != 0) {
        set(cp);
        continue;
      }
      if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) continue;  // no canonical decomposition
      utf8proc_int32_t d[32];
      int boundclass = 0;
      const utf8proc_ssize_t n = utf8proc_decompose_char(cp, d, 32, UTF8PROC_DECOMPOSE, &boundclass);
      for (utf8proc_ssize_t k = 1; k < n && k < 32; ++k)
        if (utf8proc_get_property(d[k])->combining_class == 0) set(d[k]);
      std::string one;
      append_utf8(one, uint32_t(cp));
      if (nfc(one) != one) set(cp);
    }
    for (int32_t cp = 0x1161; cp <= 0x1175; ++cp) set(cp);  // Hangul V and T jamo compose algorithmically
    for (int32_t cp = 0x11A8; cp <= 0x11C2; ++cp) set(cp);
  }
};

const NfcUnsafe& nfc_unsafe() {
  static const NfcUnsafe table;
  return table;
}

bool is_nfc(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0xCC) {  // lead bytes below 0xCC only start code points below U+0300
      ++i;
      continue;
    }
    if (nfc_unsafe().get(utf8_next(s, i))) return false;
  }
  return true;
}

}  // namespace

std::string nfc(std::string_view text) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &out,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> hold(out, &std::free);
  DS_CHECK(n >= 0, "NFC normalization failed: ", utf8proc_errmsg(n));
  return std::string(reinterpret_cast<const char*>(out), size_t(n));
}

Normalizer::Normalizer(const nlohmann::json& spec) {
  if (spec.is_null()) return;
  const auto one = [&](const nlohmann::json& n) {
    const std::string type = n.is_object() ? n.value("type", "") : "";
    DS_CHECK(type == "NFC", "tokenizer.json: normalizer '", type.empty() ? n.dump() : type,
             "' is not supported (only NFC, alone or in a Sequence)");
    nfc_ = true;
  };
  if (spec.is_object() && spec.value("type", "") == "Sequence") {
    for (const auto& n : spec.value("normalizers", nlohmann::json::array())) one(n);
  } else {
    one(spec);
  }
}

bool Normalizer::apply(std::string_view text, std::string& out) const {
  if (!nfc_ || is_nfc(text)) return false;
  out = nfc(text);
  return true;
}

}  // namespace ds::tok

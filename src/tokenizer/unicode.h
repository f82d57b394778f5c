// SPDX-License-Identifier: MIT
// UTF-8 helpers and the GPT-2 ByteLevel byte<->codepoint map used by byte-level BPE vocabularies.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ds::tok {

// Appends the UTF-8 encoding of a Unicode scalar value (cp must be <= 0x10FFFF and not a surrogate).
void append_utf8(std::string& out, uint32_t cp);

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if the bytes there are not one.
// `maximal_subpart` (out, optional) receives the length of the longest prefix that could start a valid
// sequence (at least 1): that many bytes are replaced by one U+FFFD (Unicode "maximal subpart" practice,
// the same substitution as Python's and Rust's lossy decoders).
size_t utf8_sequence_length(std::string_view s, size_t i, size_t* maximal_subpart = nullptr);

bool utf8_is_valid(std::string_view s);

// Copy of s with every ill-formed subsequence replaced by U+FFFD (maximal-subpart rule).
std::string utf8_sanitize(std::string_view s);

// How many bytes at the end of s form an incomplete but so-far valid UTF-8 sequence (0..3): a streaming
// decoder holds these back until the next bytes arrive.
size_t utf8_incomplete_tail(std::string_view s);

// GPT-2 ByteLevel map: every byte is shown as a printable codepoint (printable Latin-1 bytes map to
// themselves, the others to U+0100 + k), so BPE vocabularies can be stored as text.
const std::array<uint32_t, 256>& byte_to_codepoint();
// Inverse map: returns the byte, or -1 if cp is not one of the 256 ByteLevel codepoints.
int codepoint_to_byte(uint32_t cp);

// Decodes a ByteLevel token string (as stored in tokenizer.json) into raw bytes. If a character is not in
// the map, returns false (HF's ByteLevel decoder then keeps the token's own UTF-8 bytes).
bool bytelevel_decode(std::string_view token, std::string& out);

// Decodes one codepoint from valid UTF-8 at s[i]; advances i.
uint32_t utf8_next(std::string_view s, size_t& i);

}  // namespace ds::tok

// SPDX-License-Identifier: MIT
// Placeholder translation unit until the tokenizer sources land.
namespace ds::tok {}

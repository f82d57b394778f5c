// SPDX-License-Identifier: MIT
// The lookup tables that define ggml's i-quant formats (generated into base/quant_tables.inc from ggml-common.h):
// the sign-pattern tables (kKmaskIq2xs, kKsignsIq2xs: 7-bit sign index -> 8 sign bits with even parity), the grids
// (kIq2xxsGrid, kIq2xsGrid, kIq2sGrid: 8 unsigned bytes per entry; kIq3xxsGrid, kIq3sGrid: 4 unsigned bytes;
// kIq1sGrid: 8 signed bytes in {-1, 0, 1}), kValuesIq4nl and the IQ1 deltas. Grid entries pack their values
// little-endian: element j of entry g is byte j of g.
//
// Shared by the dequantisers (base/quant.cpp) and the integer dot-product kernels (backend/cpu/qdot_*.cpp). The tables
// are constexpr (internal linkage): each translation unit that reads one holds its own copy.
#pragma once
#include <cstdint>

namespace ds::iq_tables {

#include "base/quant_tables.inc"

}  // namespace ds::iq_tables

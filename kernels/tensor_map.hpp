#pragma once
// Host side of TMA copies (kernels/tma.cuh): the description of a tensor of bf16 rows that the
// tensor memory accelerator reads tiles of.
#include <cuda.h>

#include <cstdint>

namespace ringkv {

// rows x heads x 128 bf16 channels (row r, head h at base + (r * heads + h) * 128 elements), read in
// boxes of 128 rows x 1 head x 64 channels (16 KiB) that land in shared memory as 128-byte rows in
// the 128-byte swizzle (kernels/wgmma.cuh). Rows past the end read as zeros. Refuses an empty
// tensor, a base that is not 16-byte aligned, or a driver without TMA.
CUtensorMap bf16_rows_tensor_map(const uint16_t* base, int64_t rows, int heads);

}  // namespace ringkv

#pragma once
// Marks a function that the CPU twins and the CUDA kernels both call.
#if defined(__CUDACC__)
#define RINGKV_HOST_DEVICE __host__ __device__
#else
#define RINGKV_HOST_DEVICE
#endif

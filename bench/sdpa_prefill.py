#!/usr/bin/env python3
"""The peers of bench_prefill_attention, measured in the same run: PyTorch SDPA causal prefill
(bf16, 32 query heads, 8 KV heads, head_dim 128, one sequence) with the cuDNN and flash backends,
printing "context backend ms" lines, and the bf16 GEMM peak (8192^3 matmul) as "gemm_tflops X"."""
import argparse
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


def median_ms(f, repeats=10):
    f()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


ap = argparse.ArgumentParser()
ap.add_argument("--contexts", default="16384,65536")
args = ap.parse_args()
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn_like(a)
print(f"gemm_tflops {2 * 8192 ** 3 / median_ms(lambda: a @ b) / 1e9:.1f}", flush=True)
del a, b
for context in map(int, args.contexts.split(",")):
    q = torch.randn(1, 32, context, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 8, context, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
        try:
            with sdpa_kernel(backend):
                f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                print(f"{context} {name} {median_ms(f):.4f}", flush=True)
        except RuntimeError as e:
            print(f"# context {context} {name}: {e}".splitlines()[0], file=sys.stderr)
    del q, k, v
    torch.cuda.empty_cache()

#!/usr/bin/env python3
"""PyTorch SDPA decode attention (bf16, one query token, GQA) at the shapes of
bench_decode_attention, with the cuDNN and flash backends: prints "batch context backend ms"
lines (median of CUDA-event timings after a warm-up) for bench_decode_attention --sdpa."""
import argparse
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

ap = argparse.ArgumentParser()
ap.add_argument("--contexts", default="32768,131072,1048576,4194304")
ap.add_argument("--batches", default="1,8")
args = ap.parse_args()
free = torch.cuda.mem_get_info()[0]
for batch in map(int, args.batches.split(",")):
    for context in map(int, args.contexts.split(",")):
        need = 2 * batch * 8 * context * 128 * 2
        if need + (2 << 30) > free:
            print(f"# batch {batch} context {context}: skipped, {need / 1e9:.1f} GB of KV", file=sys.stderr)
            continue
        q = torch.randn(batch, 32, 1, 128, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(batch, 8, context, 128, device="cuda", dtype=torch.bfloat16)
        v = torch.randn_like(k)
        for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
            try:
                with sdpa_kernel(backend):
                    f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                    f()
                    torch.cuda.synchronize()
                    times = []
                    for _ in range(20):
                        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        a.record()
                        f()
                        b.record()
                        b.synchronize()
                        times.append(a.elapsed_time(b))
                times.sort()
                print(f"{batch} {context} {name} {times[len(times) // 2]:.5f}", flush=True)
            except RuntimeError as e:
                print(f"# batch {batch} context {context} {name}: {e}".splitlines()[0], file=sys.stderr)
        del q, k, v
        torch.cuda.empty_cache()

#!/usr/bin/env python3
"""RingKV against Hugging Face transformers (fp32), an implementation written elsewhere.

For several random-weight LLaMA-family models (MHA and GQA, head_dim 64 and 128, tied and untied
embeddings, attention biases, linear / llama3 / YaRN RoPE scaling), compares RingKV's logits over
a prompt of a few thousand tokens, prefilled in several chunks and then decoded token by token,
with transformers' logits: with the exact fp32 cache and with the bf16 cache. With --models DIR
it also compares greedy continuations of the real models (reftiny-14m in Hugging Face layout and
stories260K in llama2.c layout, converted here to a transformers model). Byte-level BPE
tokenizer.json files (GPT-2 and Llama 3 pre-tokenization) trained here with Hugging Face
`tokenizers` must encode text as `tokenizers` does.

Exit status 0: all match; 1: a mismatch; 77: python3 lacks torch or transformers (ctest: skipped).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import transformers
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

FP32_TOL = 3e-4   # max |difference| / max |logit|: fp32 sums in another order over 3000 positions
BF16_TOL = 3e-2   # the bf16 cache rounds keys and values to 8 significant bits


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def ringkv_logits(ringkv, model_dir, ids, spec, chunk, decode_from, vocab, work):
    ids_path = os.path.join(work, "ids.txt")
    with open(ids_path, "w") as f:
        f.write(" ".join(map(str, ids)))
    out = os.path.join(work, "logits.bin")
    run([ringkv, "logits", "--model", model_dir, "--token-ids", ids_path, "--kv", spec, "--chunk", str(chunk),
         "--page-size", "128", "--decode-from", str(decode_from), "-o", out])
    return np.fromfile(out, dtype=np.float32).reshape(len(ids), vocab)


def relative_difference(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


CASES = [
    # name, model class, config overrides
    ("mha-hd64-untied", "llama", dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=4, head_dim=64,
                                      tie_word_embeddings=False)),
    ("gqa-hd128-tied", "llama", dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=1, head_dim=128,
                                     tie_word_embeddings=True)),
    ("gqa-llama3-rope", "llama", dict(hidden_size=256, num_attention_heads=8, num_key_value_heads=2, head_dim=32,
                                      rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                                                           low_freq_factor=1.0, high_freq_factor=4.0,
                                                           original_max_position_embeddings=512))),
    ("gqa-linear-rope", "llama", dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                                      rope_parameters=dict(rope_type="linear", rope_theta=10000.0, factor=4.0))),
    ("gqa-yarn-rope", "llama", dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                                    rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                                                         original_max_position_embeddings=2048))),
    ("qwen2-bias", "qwen2", dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=2,
                                 tie_word_embeddings=False)),
]


def random_model(kind, overrides, path, seed):
    base = dict(vocab_size=1000, intermediate_size=512, num_hidden_layers=3, max_position_embeddings=8192,
                rms_norm_eps=1e-5, initializer_range=0.08, bos_token_id=1, eos_token_id=2)
    base.update(overrides)
    torch.manual_seed(seed)
    if kind == "qwen2":
        config = transformers.Qwen2Config(**base)
        model = transformers.Qwen2ForCausalLM(config)
    else:
        config = transformers.LlamaConfig(**base)
        model = transformers.LlamaForCausalLM(config)
    model = model.float().eval()
    model.save_pretrained(path, safe_serialization=True)
    return model, config


def compare_random(ringkv, work, tokens):
    failures = 0
    for i, (name, kind, overrides) in enumerate(CASES):
        path = os.path.join(work, name)
        model, config = random_model(kind, overrides, path, seed=100 + i)
        ids = torch.randint(3, config.vocab_size, (tokens,), generator=torch.Generator().manual_seed(i)).tolist()
        with torch.no_grad():
            ref = model(torch.tensor([ids])).logits[0].float().numpy()
        for spec, tol in (("fp32", FP32_TOL), ("bf16", BF16_TOL)):
            got = ringkv_logits(ringkv, path, ids, spec, 1024, tokens - 8, config.vocab_size, work)
            diff = relative_difference(got, ref)
            ok = diff < tol
            failures += not ok
            print(f"{name:18s} {spec:5s} {tokens} tokens (3 prefill chunks + 8 decode steps): "
                  f"max |diff| / max |logit| = {diff:.2e} (limit {tol:.0e}) {'ok' if ok else 'MISMATCH'}")
    return failures


def ringkv_greedy(ringkv, model, ids, n, work, extra=()):
    ids_path = os.path.join(work, "prompt.txt")
    with open(ids_path, "w") as f:
        f.write(" ".join(map(str, ids)))
    out = run([ringkv, "generate", "--model", model, "--prompt-ids", ids_path, "--max-new-tokens", str(n),
               "--print-ids", "--ignore-eos", "--kv", "fp32", *extra])
    return [int(x) for x in out.split()]


def hf_greedy(model, ids, n):
    out = list(ids)
    with torch.no_grad():
        for _ in range(n):  # plain greedy loop: no generation_config stopping rules
            out.append(int(model(torch.tensor([out])).logits[0, -1].argmax()))
    return out[len(ids):]


def llama2c_to_transformers(bin_path, path):
    """Reads a llama2.c checkpoint and builds the same model in transformers (q, k rows permuted
    from interleaved to rotate-half pairs, as the Meta-to-HF conversion does)."""
    with open(bin_path, "rb") as f:
        dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("7i", f.read(28))
        data = np.frombuffer(f.read(), dtype=np.float32)
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // heads
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        t = torch.from_numpy(data[pos:pos + n].copy()).reshape(shape)
        pos += n
        return t

    def permute(w, n_heads):
        return w.view(n_heads, hd // 2, 2, dim).transpose(1, 2).reshape(n_heads * hd, dim)

    emb = take(vocab, dim)
    attn_norm = take(layers, dim)
    wq = take(layers, dim, dim)
    wk = take(layers, kv_heads * hd, dim)
    wv = take(layers, kv_heads * hd, dim)
    wo = take(layers, dim, dim)
    mlp_norm = take(layers, dim)
    w1 = take(layers, hidden, dim)
    w2 = take(layers, dim, hidden)
    w3 = take(layers, hidden, dim)
    final = take(dim)
    pos += seq * hd  # the stored RoPE tables
    head = emb if shared else take(vocab, dim)
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden,
                                      num_hidden_layers=layers, num_attention_heads=heads,
                                      num_key_value_heads=kv_heads, max_position_embeddings=seq, rms_norm_eps=1e-5,
                                      tie_word_embeddings=shared, bos_token_id=1, eos_token_id=2)
    model = transformers.LlamaForCausalLM(config).float().eval()
    sd = {"model.embed_tokens.weight": emb, "model.norm.weight": final, "lm_head.weight": head}
    for l in range(layers):
        p = f"model.layers.{l}."
        sd.update({p + "input_layernorm.weight": attn_norm[l], p + "post_attention_layernorm.weight": mlp_norm[l],
                   p + "self_attn.q_proj.weight": permute(wq[l], heads),
                   p + "self_attn.k_proj.weight": permute(wk[l], kv_heads),
                   p + "self_attn.v_proj.weight": wv[l], p + "self_attn.o_proj.weight": wo[l],
                   p + "mlp.gate_proj.weight": w1[l], p + "mlp.down_proj.weight": w2[l], p + "mlp.up_proj.weight": w3[l]})
    model.load_state_dict(sd, strict=False)
    return model


def compare_real(ringkv, models, work):
    failures = 0
    reftiny = os.path.join(models, "reftiny-14m")
    if os.path.isdir(reftiny):
        model = transformers.AutoModelForCausalLM.from_pretrained(reftiny, dtype=torch.float32).eval()
        text = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; "
                "and darkness was upon the face of the deep.")
        ids_path = os.path.join(work, "text.txt")
        with open(ids_path, "w") as f:
            f.write(text)
        ids = [1] + [int(x) for x in run([ringkv, "tokenize", "--model", reftiny, "--text", ids_path]).split()]
        want = hf_greedy(model, ids, 48)
        got = ringkv_greedy(ringkv, reftiny, ids, 48, work)
        ok = got == want
        failures += not ok
        print(f"reftiny-14m greedy continuation of {len(ids)} prompt tokens, 48 tokens: "
              f"{'identical' if ok else 'DIFFERENT'}\n  transformers: {want}\n  ringkv:       {got}")
    else:
        print(f"reftiny-14m not found under {models}: skipped")
    stories = os.path.join(models, "stories260K", "stories260K.bin")
    if os.path.isfile(stories):
        model = llama2c_to_transformers(stories, os.path.join(work, "stories-hf"))
        want = hf_greedy(model, [1], 100)
        got = ringkv_greedy(ringkv, stories, [1], 100, work)
        ok = got == want
        failures += not ok
        print(f"stories260K greedy continuation from BOS, 100 tokens: {'identical' if ok else 'DIFFERENT'}\n"
              f"  transformers: {want}\n  ringkv:       {got}")
    else:
        print(f"stories260K not found under {models}: skipped")
    return failures


def compare_tokenizers(ringkv, data, work):
    """Byte-level BPE tokenizer.json files trained here by Hugging Face `tokenizers` (GPT-2 and
    Llama 3 pre-tokenization) encode text to the same ids under RingKV and under `tokenizers`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    calib = os.path.join(data, "gcide-calibration.txt")
    text_path = os.path.join(data, "kjv-new-testament.txt")
    if not (os.path.isfile(calib) and os.path.isfile(text_path)):
        print(f"texts not found under {data}: tokenizer comparison skipped")
        return 0
    with open(text_path, encoding="utf-8") as f:
        text = f.read()[:200000] + " Ünïcödé façade, naïve — 東京 🙂 it's 12345 tokens!\n\n  spaced   out\t"
    sample = os.path.join(work, "sample.txt")
    with open(sample, "w", encoding="utf-8") as f:
        f.write(text)
    llama3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
    failures = 0
    for name, pre in (("gpt2", pre_tokenizers.ByteLevel(add_prefix_space=False)),
                      ("llama3", pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(llama3), "isolated"),
                                                          pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                                                   use_regex=False)]))):
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<s>", "</s>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train([calib], trainer)
        path = os.path.join(work, f"{name}-tokenizer.json")
        tok.save(path)
        want = tok.encode(text).ids
        got = [int(x) for x in run([ringkv, "tokenize", "--tokenizer", path, "--text", sample]).split()]
        ok = got == want
        failures += not ok
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        print(f"tokenizer.json {name:6s} byte-level BPE (3000 pieces trained here): {len(want)} tokens "
              f"{'identical' if ok else f'DIFFERENT from token {first}'}")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ringkv", required=True, help="path of the ringkv program")
    default_models = os.environ.get("RINGKV_MODELS") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                     "..", "..", "shared", "models")
    ap.add_argument("--models", default=default_models if os.path.isdir(default_models) else None,
                    help="folder holding reftiny-14m and stories260K (default: $RINGKV_MODELS or ../shared/models)")
    ap.add_argument("--tokens", type=int, default=3000, help="prompt length of the random-model comparisons")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    with tempfile.TemporaryDirectory() as work:
        failures = compare_random(args.ringkv, work, args.tokens)
        if args.models:
            failures += compare_real(args.ringkv, args.models, work)
        data = os.environ.get("RINGKV_DATA") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                             "shared", "data")
        failures += compare_tokenizers(args.ringkv, data, work)
    print("all match" if failures == 0 else f"{failures} mismatch(es)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

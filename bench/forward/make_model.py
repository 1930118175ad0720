#!/usr/bin/python3
"""Writes a GPT-2-small-shaped model folder with random weights (fixed seed) for benchmarks.

    make_model.py OUT_DIR [--seed 1234] [--tokenizer-from models/demo-brown-gpt2]

OUT_DIR gets config.json, model.safetensors (float32, Hugging Face GPT2Model key names:
wte.weight, wpe.weight, h.L.ln_1.weight, h.L.attn.c_attn.weight, ..., ln_f.bias; Conv1D layout
(in, out)) and the GPT-2 tokenizer files. The safetensors file is written by hand: 8-byte
little-endian header length, JSON header, then the tensors' bytes. Skips the work when OUT_DIR
already holds a model written with the same seed and shape.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

SHAPE = dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)


def tensors(seed):
    """Yields (name, float32 array) in file order. GPT-2-like scales so activations stay sane
    through 12 layers: weights N(0, 0.02), projections N(0, 0.02/sqrt(2*n_layer)), layer-norm
    gains around 1 and small non-zero biases (so every term of the computation is exercised)."""
    rng = np.random.default_rng(seed)
    C, L, V, P = SHAPE["n_embd"], SHAPE["n_layer"], SHAPE["vocab_size"], SHAPE["n_positions"]
    I = 4 * C

    def normal(shape, std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    def gain():
        return (1.0 + normal((C,), 0.1)).astype(np.float32)

    proj_std = 0.02 / np.sqrt(2 * L)
    yield "wte.weight", normal((V, C), 0.02)
    yield "wpe.weight", normal((P, C), 0.01)
    for l in range(L):
        h = f"h.{l}."
        yield h + "ln_1.weight", gain()
        yield h + "ln_1.bias", normal((C,), 0.02)
        yield h + "attn.c_attn.weight", normal((C, 3 * C), 0.02)
        yield h + "attn.c_attn.bias", normal((3 * C,), 0.02)
        yield h + "attn.c_proj.weight", normal((C, C), proj_std)
        yield h + "attn.c_proj.bias", normal((C,), 0.02)
        yield h + "ln_2.weight", gain()
        yield h + "ln_2.bias", normal((C,), 0.02)
        yield h + "mlp.c_fc.weight", normal((C, I), 0.02)
        yield h + "mlp.c_fc.bias", normal((I,), 0.02)
        yield h + "mlp.c_proj.weight", normal((I, C), proj_std)
        yield h + "mlp.c_proj.bias", normal((C,), 0.02)
    yield "ln_f.weight", gain()
    yield "ln_f.bias", normal((C,), 0.02)


def write_safetensors(path, named, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    arrays = []
    for name, array in named:
        array = np.ascontiguousarray(array, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-(8 + len(blob)) % 8)  # keep the data section 8-byte aligned
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for array in arrays:
            f.write(array.tobytes())
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--tokenizer-from", default="models/demo-brown-gpt2")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    config = {
        "model_type": "gpt2", "architectures": ["GPT2Model"], "activation_function": "gelu_new",
        "n_inner": None, "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False, "bos_token_id": 50256, "eos_token_id": 50256,
        **SHAPE,
    }
    stamp = {"generator": "bench/forward/make_model.py", "seed": str(args.seed),
             "shape": json.dumps(SHAPE, sort_keys=True)}
    weights = os.path.join(args.out, "model.safetensors")
    stamp_path = os.path.join(args.out, "generator.json")
    if os.path.exists(weights) and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if json.load(f) == stamp:
                print(f"{args.out}: up to date", file=sys.stderr)
                return
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        source = os.path.join(args.tokenizer_from, name)
        if os.path.exists(source):
            shutil.copyfile(source, os.path.join(args.out, name))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    write_safetensors(weights, tensors(args.seed), {"format": "pt", **stamp})
    with open(stamp_path, "w") as f:
        json.dump(stamp, f)
    print(f"{args.out}: wrote {os.path.getsize(weights) / 1e6:.0f} MB of random GPT-2-small weights (seed {args.seed})",
          file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes one random Llama-architecture model three ways, for bench/forward/llama.sh:

    make_llama.py --shape smollm2-135m|llama-3.2-1b|llama-2-7b OUT_DIR [--seed 1234] [--hf-only]

OUT_DIR/hf/       config.json + model.safetensors (BF16, Hugging Face LlamaForCausalLM names)
OUT_DIR/f32.gguf  the same values (BF16 widened exactly) as GGUF v3 F32, llama.cpp's names and
OUT_DIR/f16.gguf  conventions (Q/K rows permuted per head as convert_hf_to_gguf.py does), and F16
                  (the BF16 values rounded to nearest F16: 1-D norms stay F32, as llama.cpp's
                  converter keeps them); a placeholder SentencePiece vocabulary of vocab_size
                  pieces so that llama.cpp loads it.
OUT_DIR/ids.txt   4 texts x 256 token ids (fixed seed), one text per line.

--hf-only writes only OUT_DIR/hf and ids.txt (llama-2-7b: 13.2 GB of BF16 for the peak-RSS
measurement in docs/BENCHMARKS.md; the lm_head is left out, tied, as it is never used).

Every tensor is generated once and written to all three files, so peak memory is one tensor.
Weights N(0, 0.02), output projections N(0, 0.02 / sqrt(2 n_layer)), norm gains 1 + N(0, 0.1).
RoPE: theta 10000 (SmolLM2: 100000; Llama 3.2's llama3 frequency scaling is left out: it does
not change the work). Never committed: OUT_DIR is a temporary folder.
"""
import argparse
import json
import os
import struct

import numpy as np

SHAPES = {
    # HuggingFaceTB/SmolLM2-135M config.json
    "smollm2-135m": dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, intermediate_size=1536, vocab_size=49152,
                         max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5),
    # meta-llama/Llama-3.2-1B config.json (rope_scaling left out, see above)
    "llama-3.2-1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, intermediate_size=8192, vocab_size=128256,
                         max_position_embeddings=131072, rope_theta=500000.0, rms_norm_eps=1e-5),
    # meta-llama/Llama-2-7b-hf config.json (multi-head attention, no GQA)
    "llama-2-7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=32, intermediate_size=11008, vocab_size=32000,
                       max_position_embeddings=4096, rope_theta=10000.0, rms_norm_eps=1e-5),
}


def tensors(shape, rng):
    """Yields (hf name, gguf name, float32 array rounded to bf16, permute heads or 0)."""
    C, L, V = shape["hidden_size"], shape["num_hidden_layers"], shape["vocab_size"]
    H, KV, I = shape["num_attention_heads"], shape["num_key_value_heads"], shape["intermediate_size"]
    D = C // H

    def normal(dims, std):
        return rng.standard_normal(dims, dtype=np.float32) * np.float32(std)

    def gain():
        return 1.0 + normal((C,), 0.1)

    proj = 0.02 / np.sqrt(2 * L)
    yield "model.embed_tokens.weight", "token_embd.weight", normal((V, C), 0.02), 0
    for l in range(L):
        h, b = f"model.layers.{l}.", f"blk.{l}."
        yield h + "input_layernorm.weight", b + "attn_norm.weight", gain(), 0
        yield h + "self_attn.q_proj.weight", b + "attn_q.weight", normal((H * D, C), 0.02), H
        yield h + "self_attn.k_proj.weight", b + "attn_k.weight", normal((KV * D, C), 0.02), KV
        yield h + "self_attn.v_proj.weight", b + "attn_v.weight", normal((KV * D, C), 0.02), 0
        yield h + "self_attn.o_proj.weight", b + "attn_output.weight", normal((C, H * D), proj), 0
        yield h + "post_attention_layernorm.weight", b + "ffn_norm.weight", gain(), 0
        yield h + "mlp.gate_proj.weight", b + "ffn_gate.weight", normal((I, C), 0.02), 0
        yield h + "mlp.up_proj.weight", b + "ffn_up.weight", normal((I, C), 0.02), 0
        yield h + "mlp.down_proj.weight", b + "ffn_down.weight", normal((C, I), proj), 0
    yield "model.norm.weight", "output_norm.weight", gain(), 0


def bf16_bits(x):
    """Round-to-nearest-even float32 → bf16 bits."""
    bits = x.astype(np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def permute(w, heads):
    # convert_hf_to_gguf.py LlamaModel.permute
    rows = w.shape[0]
    return (w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def gguf_string(text):
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def gguf_header(shape, infos, ftype):
    """infos: list of (gguf name, shape outermost first, ggml type, byte size)."""
    C, H = shape["hidden_size"], shape["num_attention_heads"]
    V = shape["vocab_size"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581tok{i}" for i in range(V - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (V - 259)
    meta = [
        ("general.architecture", 8, gguf_string("llama")),
        ("general.name", 8, gguf_string("tokmap-bench-random")),
        ("general.file_type", 4, struct.pack("<I", ftype)),
        ("llama.vocab_size", 4, struct.pack("<I", V)),
        ("llama.context_length", 4, struct.pack("<I", shape["max_position_embeddings"])),
        ("llama.embedding_length", 4, struct.pack("<I", C)),
        ("llama.block_count", 4, struct.pack("<I", shape["num_hidden_layers"])),
        ("llama.feed_forward_length", 4, struct.pack("<I", shape["intermediate_size"])),
        ("llama.attention.head_count", 4, struct.pack("<I", H)),
        ("llama.attention.head_count_kv", 4, struct.pack("<I", shape["num_key_value_heads"])),
        ("llama.rope.dimension_count", 4, struct.pack("<I", C // H)),
        ("llama.rope.freq_base", 6, struct.pack("<f", shape["rope_theta"])),
        ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", shape["rms_norm_eps"])),
        ("tokenizer.ggml.model", 8, gguf_string("llama")),
        ("tokenizer.ggml.tokens", 9,
         struct.pack("<IQ", 8, len(tokens)) + b"".join(gguf_string(t) for t in tokens)),
        ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, V) + np.zeros(V, "<f4").tobytes()),
        ("tokenizer.ggml.token_type", 9,
         struct.pack("<IQ", 5, V) + np.array(types, "<i4").tobytes()),
        ("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 1)),
        ("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 2)),
        ("tokenizer.ggml.unknown_token_id", 4, struct.pack("<I", 0)),
        ("tokenizer.ggml.add_bos_token", 7, struct.pack("<B", 0)),
        ("general.alignment", 4, struct.pack("<I", 32)),
    ]
    out = b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(meta))
    for key, kind, value in meta:
        out += gguf_string(key) + struct.pack("<I", kind) + value
    offset, offsets = 0, []
    for name, dims, ggml_type, size in infos:
        out += gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in reversed(dims))
        out += struct.pack("<IQ", ggml_type, offset)
        offsets.append(offset)
        offset += (size + 31) // 32 * 32
    out += b"\0" * (-len(out) % 32)
    return out, offsets


def tensor_shapes(shape):
    C, L, V = shape["hidden_size"], shape["num_hidden_layers"], shape["vocab_size"]
    H, KV, I = shape["num_attention_heads"], shape["num_key_value_heads"], shape["intermediate_size"]
    D = C // H
    dims = [(V, C)]
    for _ in range(L):
        dims += [(C,), (H * D, C), (KV * D, C), (KV * D, C), (C, H * D), (C,), (I, C), (I, C), (C, I)]
    return dims + [(C,)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--hf-only", action="store_true", help="skip the two GGUF files")
    parser.add_argument("out")
    args = parser.parse_args()
    shape = SHAPES[args.shape]
    os.makedirs(os.path.join(args.out, "hf"), exist_ok=True)
    config = dict(model_type="llama", architectures=["LlamaForCausalLM"], hidden_act="silu",
                  tie_word_embeddings=True, torch_dtype="bfloat16", attention_bias=False,
                  mlp_bias=False, rope_scaling=None, bos_token_id=1, eos_token_id=2, **shape)
    with open(os.path.join(args.out, "hf", "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    dims = tensor_shapes(shape)
    # The names of all layers without generating values.
    names = [("model.embed_tokens.weight", "token_embd.weight")]
    for l in range(shape["num_hidden_layers"]):
        h, b = f"model.layers.{l}.", f"blk.{l}."
        names += [(h + "input_layernorm.weight", b + "attn_norm.weight"),
                  (h + "self_attn.q_proj.weight", b + "attn_q.weight"),
                  (h + "self_attn.k_proj.weight", b + "attn_k.weight"),
                  (h + "self_attn.v_proj.weight", b + "attn_v.weight"),
                  (h + "self_attn.o_proj.weight", b + "attn_output.weight"),
                  (h + "post_attention_layernorm.weight", b + "ffn_norm.weight"),
                  (h + "mlp.gate_proj.weight", b + "ffn_gate.weight"),
                  (h + "mlp.up_proj.weight", b + "ffn_up.weight"),
                  (h + "mlp.down_proj.weight", b + "ffn_down.weight")]
    names.append(("model.norm.weight", "output_norm.weight"))

    # safetensors header (BF16)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for (hf, _), d in zip(names, dims):
        size = int(np.prod(d)) * 2
        header[hf] = {"dtype": "BF16", "shape": list(d), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    st = open(os.path.join(args.out, "hf", "model.safetensors"), "wb")
    st.write(struct.pack("<Q", len(text)) + text)

    files = {}
    for kind, ggml, ftype in () if args.hf_only else (("f32", 0, 0), ("f16", 1, 1)):
        infos = []
        for (_, gg), d in zip(names, dims):
            t = 0 if (ggml == 0 or len(d) == 1) else ggml
            infos.append((gg, d, t, int(np.prod(d)) * (4 if t == 0 else 2)))
        head, offsets = gguf_header(shape, infos, ftype)
        f = open(os.path.join(args.out, f"{kind}.gguf"), "wb")
        f.write(head)
        files[kind] = (f, infos, offsets, len(head))

    rng = np.random.default_rng(args.seed)
    for i, (hf, gg, values, heads) in enumerate(tensors(shape, rng)):
        bits = bf16_bits(values)
        st.write(bits.tobytes())
        if not files:
            continue
        wide = (bits.astype(np.uint32) << 16).view(np.float32).reshape(values.shape)
        if heads:
            wide = permute(wide, heads)
        for kind, (f, infos, offsets, start) in files.items():
            f.seek(start + offsets[i])
            data = wide if infos[i][2] == 0 else wide.astype(np.float16)
            f.write(np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes())
    st.close()
    for f, *_ in files.values():
        f.close()

    ids = np.random.default_rng(args.seed + 1).integers(259, shape["vocab_size"], size=(4, 256))
    with open(os.path.join(args.out, "ids.txt"), "w") as f:
        for row in ids:
            f.write(" ".join(str(int(x)) for x in row) + "\n")


if __name__ == "__main__":
    main()

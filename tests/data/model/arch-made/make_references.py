#!/usr/bin/env python3
"""Tiny random models of the architectures the shared fixtures lack (mistral, qwen3, gemma,
gemma3_text, roberta, distilbert, and llama with llama3 rope scaling), in the Hugging Face
layout, with reference hidden states from a float64 PyTorch re-implementation of the Hugging Face
forward passes (output_hidden_states=True order).

Second-best references, said plainly: this re-implementation was written by the tokmap developer
who also wrote the C++ forward pass (from the transformers modeling code's semantics, not from
the C++). To make it worth something it first reproduces the independent per-layer states of the
six fixture models (shared/fixtures/arch via tests/data/model/arch) and refuses to write anything
if it does not (max relative error 1e-6). transformers itself cannot be run here (not installed,
no network).

    /usr/bin/python3 tests/data/model/arch-made/make_references.py   # from the repository root
Needs numpy and torch (CPU). Deterministic (fixed seeds).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "arch")
torch.set_default_dtype(torch.float64)


# --- safetensors ---------------------------------------------------------------------------------

def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(
            np.frombuffer(data[8 + n + b:8 + n + e], dtype="<f4").reshape(info["shape"]).astype(np.float64))
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name], dtype="<f4")
        blob = array.tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for blob in blobs:
            f.write(blob)


# --- the forward passes ----------------------------------------------------------------------------

def rms_norm(x, w, eps, add_one):
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * ((1.0 + w) if add_one else w)


def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def act(name, x):
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name == "silu":
        return x * torch.sigmoid(x)
    raise ValueError(name)


def inverse_frequencies(theta, dim, scaling):
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    if not scaling:
        return inv
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        return inv / scaling["factor"]
    if kind == "llama3":
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / high) & (wavelen <= old / low)
        return torch.where(medium, smoothed, scaled)
    raise ValueError(kind)


def rope(x, positions, inv, rotary):
    """x: (T, H, D); rotates the first `rotary` dims, rotate_half pairing."""
    angles = positions[:, None].double() * inv[None, :]
    emb = torch.cat([angles, angles], -1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    xr, xp = x[..., :rotary], x[..., rotary:]
    half = rotary // 2
    rotated = torch.cat([-xr[..., half:], xr[..., :half]], -1)
    return torch.cat([xr * cos + rotated * sin, xp], -1)


def attend(q, k, v, scale, causal, window, softcap):
    """q: (T, H, D), k/v: (T, KV, D) → (T, H * D)."""
    T, H, D = q.shape
    group = H // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = torch.einsum("ihd,jhd->hij", q, k) * scale
    if softcap:
        scores = softcap * torch.tanh(scores / softcap)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = torch.ones(T, T, dtype=torch.bool)
    if causal:
        allowed &= j <= i
    if window:
        allowed &= j > i - window
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.einsum("hij,jhd->ihd", scores.softmax(-1), v).reshape(T, H * D)


def linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def decoder_states(cfg, W, ids):
    """llama / mistral / qwen2 / qwen3 / gemma / gemma2 / gemma3_text / phi3."""
    mt = cfg["model_type"]
    gemma = mt.startswith("gemma")
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    D = cfg.get("head_dim") or C // H
    L, eps = cfg["num_hidden_layers"], cfg["rms_norm_eps"]
    p = "model."
    actname = cfg.get("hidden_activation") or cfg.get("hidden_act") or "gelu_pytorch_tanh"
    if mt == "gemma" and not cfg.get("hidden_activation"):
        actname = "gelu_pytorch_tanh"
    T = len(ids)
    pos = torch.arange(T)
    inv_full = inverse_frequencies(cfg.get("rope_theta", 10000.0), D, cfg.get("rope_scaling"))
    inv_local = inverse_frequencies(cfg.get("rope_local_base_freq", 10000.0), D, None) if mt == "gemma3_text" else inv_full
    window = cfg.get("sliding_window") or 0
    types = cfg.get("layer_types")
    if types is None:
        if mt == "gemma2":
            types = ["sliding_attention" if l % 2 == 0 else "full_attention" for l in range(L)]
        elif mt == "gemma3_text":
            pattern = cfg.get("sliding_window_pattern", 6)
            types = ["sliding_attention" if (l + 1) % pattern else "full_attention" for l in range(L)]
        elif mt == "mistral":
            types = ["sliding_attention" if window else "full_attention"] * L
        else:
            types = ["full_attention"] * L
    scale = (cfg["query_pre_attn_scalar"] ** -0.5) if mt in ("gemma2", "gemma3_text") else D ** -0.5
    softcap = cfg.get("attn_logit_softcapping") if mt in ("gemma2", "gemma3_text") else None
    x = W[p + "embed_tokens.weight"][ids]
    if gemma:
        x = x * (C ** 0.5)
    states = [x]
    for l in range(L):
        h = f"{p}layers.{l}."
        norm = lambda t, name: rms_norm(t, W[h + name], eps, gemma)
        a_in = norm(x, "input_layernorm.weight")
        if mt == "phi3":
            qkv = linear(a_in, W[h + "self_attn.qkv_proj.weight"])
            q, k, v = qkv.split([H * D, KV * D, KV * D], -1)
        else:
            bias = lambda n: W.get(h + f"self_attn.{n}_proj.bias")
            q = linear(a_in, W[h + "self_attn.q_proj.weight"], bias("q"))
            k = linear(a_in, W[h + "self_attn.k_proj.weight"], bias("k"))
            v = linear(a_in, W[h + "self_attn.v_proj.weight"], bias("v"))
        q, k, v = q.view(T, H, D), k.view(T, KV, D), v.view(T, KV, D)
        if mt in ("qwen3", "gemma3_text"):
            q = rms_norm(q, W[h + "self_attn.q_norm.weight"], eps, gemma)
            k = rms_norm(k, W[h + "self_attn.k_norm.weight"], eps, gemma)
        sliding = types[l] == "sliding_attention"
        inv = inv_local if sliding else inv_full
        q, k = rope(q, pos, inv, D), rope(k, pos, inv, D)
        a = linear(attend(q, k, v, scale, True, window if sliding else 0, softcap), W[h + "self_attn.o_proj.weight"])
        if mt in ("gemma2", "gemma3_text"):
            a = norm(a, "post_attention_layernorm.weight")
            x = x + a
            m_in = norm(x, "pre_feedforward_layernorm.weight")
        else:
            x = x + a
            m_in = norm(x, "post_attention_layernorm.weight")
        if mt == "phi3":
            gate, up = linear(m_in, W[h + "mlp.gate_up_proj.weight"]).chunk(2, -1)
        else:
            gate, up = linear(m_in, W[h + "mlp.gate_proj.weight"]), linear(m_in, W[h + "mlp.up_proj.weight"])
        m = linear(act(actname, gate) * up, W[h + "mlp.down_proj.weight"])
        if mt in ("gemma2", "gemma3_text"):
            m = norm(m, "post_feedforward_layernorm.weight")
        x = x + m
        states.append(x)
    states[-1] = rms_norm(x, W[p + "norm.weight"], eps, gemma)
    return states


def neox_states(cfg, W, ids):
    C, H, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    D, eps, T = C // H, cfg["layer_norm_eps"], len(ids)
    rot = int(D * cfg["rotary_pct"])
    inv = inverse_frequencies(cfg["rotary_emb_base"], rot, None)
    p = "gpt_neox."
    x = W[p + "embed_in.weight"][ids]
    states = [x]
    for l in range(L):
        h = f"{p}layers.{l}."
        ln = lambda t, n: layer_norm(t, W[h + n + ".weight"], W[h + n + ".bias"], eps)
        qkv = linear(ln(x, "input_layernorm"), W[h + "attention.query_key_value.weight"],
                     W[h + "attention.query_key_value.bias"]).view(T, H, 3 * D)
        q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
        q, k = rope(q, torch.arange(T), inv, rot), rope(k, torch.arange(T), inv, rot)
        a = linear(attend(q, k, v, D ** -0.5, True, 0, None), W[h + "attention.dense.weight"], W[h + "attention.dense.bias"])
        mlp = lambda t: linear(act(cfg["hidden_act"], linear(t, W[h + "mlp.dense_h_to_4h.weight"], W[h + "mlp.dense_h_to_4h.bias"])),
                               W[h + "mlp.dense_4h_to_h.weight"], W[h + "mlp.dense_4h_to_h.bias"])
        if cfg.get("use_parallel_residual", True):
            x = mlp(ln(x, "post_attention_layernorm")) + a + x
        else:
            x = x + a
            x = mlp(ln(x, "post_attention_layernorm")) + x
        states.append(x)
    states[-1] = layer_norm(x, W[p + "final_layer_norm.weight"], W[p + "final_layer_norm.bias"], eps)
    return states


def encoder_states(cfg, W, ids):
    mt = cfg["model_type"]
    distil = mt == "distilbert"
    C = cfg["dim"] if distil else cfg["hidden_size"]
    H = cfg["n_heads"] if distil else cfg["num_attention_heads"]
    L = cfg["n_layers"] if distil else cfg["num_hidden_layers"]
    eps = 1e-12 if distil else cfg["layer_norm_eps"]
    actname = cfg["activation"] if distil else cfg["hidden_act"]
    D, T = C // H, len(ids)
    ids_t = torch.tensor(ids)
    if mt == "roberta":
        pad = cfg["pad_token_id"]
        mask = (ids_t != pad).long()
        positions = torch.cumsum(mask, 0) * mask + pad
    else:
        positions = torch.arange(T)
    p = "" if "embeddings.word_embeddings.weight" in W else mt + "."
    e = p + "embeddings."
    x = W[e + "word_embeddings.weight"][ids_t]
    if not distil:
        x = x + W[e + "token_type_embeddings.weight"][torch.zeros(T, dtype=torch.long)]
    x = x + W[e + "position_embeddings.weight"][positions]
    x = layer_norm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps)
    states = [x]
    for l in range(L):
        if distil:
            h = f"{p}transformer.layer.{l}."
            n = {"q": "attention.q_lin", "k": "attention.k_lin", "v": "attention.v_lin", "o": "attention.out_lin",
                 "ln1": "sa_layer_norm", "up": "ffn.lin1", "down": "ffn.lin2", "ln2": "output_layer_norm"}
        else:
            h = f"{p}encoder.layer.{l}."
            n = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                 "o": "attention.output.dense", "ln1": "attention.output.LayerNorm", "up": "intermediate.dense",
                 "down": "output.dense", "ln2": "output.LayerNorm"}
        lin = lambda t, k: linear(t, W[h + n[k] + ".weight"], W[h + n[k] + ".bias"])
        q, k, v = (lin(x, key).view(T, H, D) for key in ("q", "k", "v"))
        a = lin(attend(q, k, v, D ** -0.5, False, 0, None), "o")
        x = layer_norm(a + x, W[h + n["ln1"] + ".weight"], W[h + n["ln1"] + ".bias"], eps)
        m = lin(act(actname, lin(x, "up")), "down")
        x = layer_norm(m + x, W[h + n["ln2"] + ".weight"], W[h + n["ln2"] + ".bias"], eps)
        states.append(x)
    return states


def hidden_states(cfg, W, ids):
    mt = cfg["model_type"]
    if mt == "gpt_neox":
        s = neox_states(cfg, W, ids)
    elif mt in ("bert", "roberta", "distilbert"):
        s = encoder_states(cfg, W, ids)
    else:
        s = decoder_states(cfg, W, torch.tensor(ids))
    return torch.stack(s).numpy()


# --- self-check against the independent fixture states ----------------------------------------------

def check_fixtures():
    worst = 0.0
    for name in ("llama", "qwen2", "phi3", "gemma2", "gptneox", "bert"):
        d = os.path.join(FIXTURES, name)
        cfg = json.load(open(os.path.join(d, "hf", "config.json")))
        W = read_safetensors(os.path.join(d, "hf", "model.safetensors"))
        seqs = json.load(open(os.path.join(d, "inputs.json")))["sequences"]
        for s, ids in enumerate(seqs):
            want = np.load(os.path.join(d, "pytorch", f"seq{s}_hidden_states.npy")).astype(np.float64)
            got = hidden_states(cfg, W, ids)
            err = np.abs(got - want).max() / np.abs(want).max()
            worst = max(worst, err)
            if err > 1e-6:
                sys.exit(f"{name} seq {s}: this re-implementation disagrees with the fixture ({err:.2e})")
        print(f"fixture {name}: agrees (max rel. error so far {worst:.1e})")
    return worst


# --- the new models -------------------------------------------------------------------------------

def random_weights(shapes, seed):
    g = torch.Generator().manual_seed(seed)
    W = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight") or name.endswith("LayerNorm.weight") or "layer_norm.weight" in name:
            base = 0.0 if "gemma" in MODEL_TYPE else 1.0
            W[name] = base + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith(".bias"):
            W[name] = 0.05 * torch.randn(shape, generator=g)
        else:
            W[name] = 0.08 * torch.randn(shape, generator=g)
    # Round through float32: the files hold float32 and the references must use the same values.
    return {k: torch.from_numpy(v.numpy().astype(np.float32).astype(np.float64)) for k, v in W.items()}


def decoder_shapes(cfg):
    mt = cfg["model_type"]
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV, D, I = cfg["num_key_value_heads"], cfg.get("head_dim") or C // H, cfg["intermediate_size"]
    s = {"model.embed_tokens.weight": (cfg["vocab_size"], C), "model.norm.weight": (C,)}
    for l in range(cfg["num_hidden_layers"]):
        h = f"model.layers.{l}."
        s.update({h + "input_layernorm.weight": (C,), h + "post_attention_layernorm.weight": (C,),
                  h + "self_attn.q_proj.weight": (H * D, C), h + "self_attn.k_proj.weight": (KV * D, C),
                  h + "self_attn.v_proj.weight": (KV * D, C), h + "self_attn.o_proj.weight": (C, H * D),
                  h + "mlp.gate_proj.weight": (I, C), h + "mlp.up_proj.weight": (I, C),
                  h + "mlp.down_proj.weight": (C, I)})
        if mt in ("qwen3", "gemma3_text"):
            s.update({h + "self_attn.q_norm.weight": (D,), h + "self_attn.k_norm.weight": (D,)})
        if mt in ("gemma2", "gemma3_text"):
            s.update({h + "pre_feedforward_layernorm.weight": (C,), h + "post_feedforward_layernorm.weight": (C,)})
    return s


def encoder_shapes(cfg):
    mt = cfg["model_type"]
    distil = mt == "distilbert"
    C = cfg["dim"] if distil else cfg["hidden_size"]
    I = cfg["hidden_dim"] if distil else cfg["intermediate_size"]
    L = cfg["n_layers"] if distil else cfg["num_hidden_layers"]
    p = mt + "."
    s = {p + "embeddings.word_embeddings.weight": (cfg["vocab_size"], C),
         p + "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], C),
         p + "embeddings.LayerNorm.weight": (C,), p + "embeddings.LayerNorm.bias": (C,)}
    if not distil:
        s[p + "embeddings.token_type_embeddings.weight"] = (cfg["type_vocab_size"], C)
    for l in range(L):
        if distil:
            h = f"{p}transformer.layer.{l}."
            lin = {"attention.q_lin": (C, C), "attention.k_lin": (C, C), "attention.v_lin": (C, C),
                   "attention.out_lin": (C, C), "ffn.lin1": (I, C), "ffn.lin2": (C, I)}
            norms = ["sa_layer_norm", "output_layer_norm"]
        else:
            h = f"{p}encoder.layer.{l}."
            lin = {"attention.self.query": (C, C), "attention.self.key": (C, C), "attention.self.value": (C, C),
                   "attention.output.dense": (C, C), "intermediate.dense": (I, C), "output.dense": (C, I)}
            norms = ["attention.output.LayerNorm", "output.LayerNorm"]
        for n, shape in lin.items():
            s[h + n + ".weight"] = shape
            s[h + n + ".bias"] = (shape[0],)
        for n in norms:
            s[h + n + ".weight"] = (C,)
            s[h + n + ".bias"] = (C,)
    return s


COMMON = {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 128, "max_position_embeddings": 64,
          "initializer_range": 0.02, "torch_dtype": "float32", "tie_word_embeddings": True}
MODELS = {
    "mistral": dict(COMMON, model_type="mistral", architectures=["MistralForCausalLM"], num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, hidden_act="silu", rms_norm_eps=1e-5,
                    rope_theta=10000.0, sliding_window=8, tie_word_embeddings=False),
    "qwen3": dict(COMMON, model_type="qwen3", architectures=["Qwen3ForCausalLM"], num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32, hidden_act="silu",
                  rms_norm_eps=1e-6, rope_theta=1000000.0, attention_bias=False, use_sliding_window=False,
                  sliding_window=None, rope_scaling=None),
    "gemma": dict(COMMON, model_type="gemma", architectures=["GemmaForCausalLM"], num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=32, hidden_act="gelu",
                  hidden_activation=None, rms_norm_eps=1e-6, rope_theta=10000.0),
    "gemma3_text": dict(COMMON, model_type="gemma3_text", architectures=["Gemma3ForCausalLM"], num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                        hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, rope_theta=1000000.0,
                        rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 2.0},
                        sliding_window=8, sliding_window_pattern=2, query_pre_attn_scalar=24,
                        attn_logit_softcapping=None, final_logit_softcapping=None),
    "llama3rope": dict(COMMON, model_type="llama", architectures=["LlamaForCausalLM"], num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, hidden_act="silu", rms_norm_eps=1e-5,
                       rope_theta=10000.0, rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                         "original_max_position_embeddings": 32}),
    "roberta": dict(model_type="roberta", architectures=["RobertaModel"], vocab_size=256, hidden_size=64,
                    num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, hidden_act="gelu",
                    max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1,
                    bos_token_id=0, eos_token_id=2, position_embedding_type="absolute"),
    "distilbert": dict(model_type="distilbert", architectures=["DistilBertModel"], vocab_size=256, dim=64,
                       n_layers=2, n_heads=4, hidden_dim=128, activation="gelu", max_position_embeddings=64,
                       sinusoidal_pos_embds=False, pad_token_id=0),
}
MODEL_TYPE = ""


def main():
    worst = check_fixtures()
    global MODEL_TYPE
    rng = np.random.default_rng(777)
    for seed, (name, cfg) in enumerate(MODELS.items(), start=2001):
        MODEL_TYPE = cfg["model_type"]
        shapes = encoder_shapes(cfg) if MODEL_TYPE in ("roberta", "distilbert") else decoder_shapes(cfg)
        W = random_weights(shapes, seed)
        seqs = [rng.integers(3, cfg["vocab_size"], n).tolist() for n in (7, 19, 40)]
        if MODEL_TYPE == "roberta":
            seqs[1][5] = cfg["pad_token_id"]  # a padding id inside: its position is pad_token_id
        d = os.path.join(HERE, name)
        os.makedirs(os.path.join(d, "hf"), exist_ok=True)
        os.makedirs(os.path.join(d, "pytorch"), exist_ok=True)
        json.dump(cfg, open(os.path.join(d, "hf", "config.json"), "w"), indent=2)
        write_safetensors(os.path.join(d, "hf", "model.safetensors"), {k: v.numpy() for k, v in W.items()})
        json.dump({"sequences": seqs, "weights_seed": seed, "inputs_seed": 777}, open(os.path.join(d, "inputs.json"), "w"))
        for s, ids in enumerate(seqs):
            np.save(os.path.join(d, "pytorch", f"seq{s}_hidden_states.npy"), hidden_states(cfg, W, ids).astype(np.float32))
        print(f"wrote {name}: {len(W)} tensors")
    print(f"fixture agreement of this re-implementation: {worst:.1e}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Logit-lens references: each token's top-5 next-token predictions and the entropy of the
distribution at every layer, in float64, from states that tokmap did not compute.

For the tiny fixtures in tests/data/model/arch/<arch> the states are pytorch/seq1_hidden_states.npy
(a float64 PyTorch re-implementation of the Hugging Face forward pass, Hugging Face
output_hidden_states order); for the bundled GPT-2 (models/demo-brown-gpt2) they are case 2 of
tests/data/demo-brown-gpt2/reference_hidden_states.safetensors (transformers 5.17, float32).
The lens is Hugging Face's head applied to them:

    logits_l = lm_head(final_norm(h_l))  for l < L      (final norm: model.norm / ln_f / ...)
    logits_L = lm_head(h_L)                             (the last state already has the norm)
    Gemma 2: logits = cap * tanh(logits / cap), cap = final_logit_softcapping (30 when absent)
    p = softmax(logits); entropy = -sum p ln p (nats); top 5 by p, ties: smaller id first

lm_head is lm_head.weight / embed_out.weight when the checkpoint has it, else the token
embedding (tied). Writes lens/<name>.json: {"ids": the sequence, "layers": [{"layer", "top_ids"
(T, 5), "top_probs" (T, 5), "entropy" (T)}]}.

    /usr/bin/python3 tests/data/explore/make_lens_references.py   # from the repository root
Needs numpy only. Deterministic.
"""
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..")
ROOT = os.path.join(DATA, "..", "..")
K = 5

DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "F64": "<f8"}


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def rms_norm(h, w, eps, add_one):
    scale = (1.0 + w) if add_one else w
    return h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + eps) * scale


def layer_norm(h, w, b, eps):
    mean = h.mean(axis=-1, keepdims=True)
    var = ((h - mean) ** 2).mean(axis=-1, keepdims=True)
    return (h - mean) / np.sqrt(var + eps) * w + b


def lens(states, norm, head, cap):
    """states: (L + 1, T, C) float64 → per layer top ids, probs, entropy."""
    last = states.shape[0] - 1
    layers = []
    for l in range(states.shape[0]):
        x = states[l] if l == last else norm(states[l])
        z = x @ head.T
        if cap:
            z = cap * np.tanh(z / cap)
        z = z - z.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        p = np.exp(log_p)
        entropy = -(p * log_p).sum(axis=-1)
        # Stable sort on -p: equal probabilities keep the smaller id first.
        order = np.argsort(-p, axis=-1, kind="stable")[:, :K]
        layers.append({
            "layer": l,
            "top_ids": order.tolist(),
            "top_probs": np.take_along_axis(p, order, axis=-1).tolist(),
            "entropy": entropy.tolist(),
        })
    return layers


def fixture(arch):
    folder = os.path.join(DATA, "model", "arch", arch)
    config = json.load(open(os.path.join(folder, "hf", "config.json")))
    w = {k: v.astype(np.float64) for k, v in read_safetensors(os.path.join(folder, "hf", "model.safetensors")).items()}
    ids = json.load(open(os.path.join(folder, "inputs.json")))["sequences"][1]
    states = np.load(os.path.join(folder, "pytorch", "seq1_hidden_states.npy")).astype(np.float64)
    cap = 0.0
    if arch == "gptneox":
        p = "gpt_neox."
        eps = config["layer_norm_eps"]
        norm = lambda h: layer_norm(h, w[p + "final_layer_norm.weight"], w[p + "final_layer_norm.bias"], eps)
        head = w.get("embed_out.weight", w[p + "embed_in.weight"])
    else:
        eps = config["rms_norm_eps"]
        gemma = config["model_type"].startswith("gemma")
        norm = lambda h: rms_norm(h, w["model.norm.weight"], eps, gemma)
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        if config["model_type"] == "gemma2":
            cap = config.get("final_logit_softcapping", 30.0) or 0.0
    return ids, lens(states, norm, head, cap)


def gpt2():
    w = {k: v.astype(np.float64) for k, v in read_safetensors(os.path.join(ROOT, "models", "demo-brown-gpt2", "model.safetensors")).items() if not k.startswith("transformer.h.")}
    ref = read_safetensors(os.path.join(DATA, "demo-brown-gpt2", "reference_hidden_states.safetensors"))
    ids = ref["case2.input_ids"].tolist()
    states = ref["case2.hidden_states"].astype(np.float64)
    norm = lambda h: layer_norm(h, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], 1e-5)
    return ids, lens(states, norm, w["transformer.wte.weight"], 0.0)


def main():
    os.makedirs(os.path.join(HERE, "lens"), exist_ok=True)
    cases = {arch: (lambda a=arch: fixture(a)) for arch in ["llama", "qwen2", "phi3", "gemma2", "gptneox"]}
    cases["demo-brown-gpt2"] = gpt2
    for name, make in cases.items():
        ids, layers = make()
        with open(os.path.join(HERE, "lens", name + ".json"), "w") as f:
            json.dump({"ids": ids, "layers": layers}, f)
        top1 = [l["top_probs"][0][0] for l in layers]
        print(f"{name}: {len(ids)} tokens, {len(layers)} layers, top-1 p of token 0 per layer {np.round(top1, 4).tolist()}")


if __name__ == "__main__":
    main()

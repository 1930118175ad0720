#!/usr/bin/python3
"""llama.cpp references for the made architectures (mistral, qwen3, gemma, gemma3_text, roberta,
distilbert, llama3rope), made the way shared/fixtures/arch made them for the six fixtures:

1. hf/model.safetensors (F32) -> model.gguf (GGUF v3, all F32) with llama.cpp's tensor names,
   metadata keys and conventions for that architecture (as convert_hf_to_gguf.py writes them,
   learnt from llama.cpp's converter and src/models/*.cpp; no code of theirs is used). A
   placeholder SentencePiece vocabulary of vocab_size pieces so that llama.cpp loads the file.
2. llama.cpp (npm node-llama-cpp 3.21.1, bench/forward/llamacpp, `npm ci` there first; CPU,
   flash attention off, F32 KV cache, pooling none) evaluates it through bench/forward/llamacpp/references.mjs:
   decoder row k = last-token embedding of tokens[0..k] evaluated from an empty context;
   encoder row j = last-token embedding after swapping tokens j <-> n-1 and the position rows
   j <-> n-1 (llama.cpp returns only the last token's state without pooling).
3. llamacpp/seq{0,1,2}.npy (n_tokens, hidden) float32 + llamacpp/meta.json (how, exactly).

    /usr/bin/python3 tests/data/model/arch-made/make_llamacpp_references.py [NAME ...]

Where llama.cpp's semantics differ from the Hugging Face model, what was done is said in each
meta.json ("deviations") and in README.md here. Deterministic.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
NODE_DIR = os.path.join(ROOT, "bench", "forward", "llamacpp")


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (path, name)
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], dtype="<f4").reshape(info["shape"]).copy()
    return out


# --- GGUF v3 writer ------------------------------------------------------------------------------

def gstr(text):
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9


def value(kind, v):
    if kind == U32:
        return struct.pack("<I", v)
    if kind == F32:
        return struct.pack("<f", v)
    if kind == BOOL:
        return struct.pack("<B", 1 if v else 0)
    if kind == STR:
        return gstr(v)
    raise ValueError(kind)


def vocab_meta(vocab):
    # <unk> <s> </s>, byte pieces (as many as fit: llama.cpp looks up <0x0A>), then plain pieces.
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(min(256, vocab - 3))]
    types = [2, 3, 3] + [6] * (len(tokens) - 3)
    tokens += [f"\u2581tok{i}" for i in range(vocab - len(tokens))]
    types += [1] * (vocab - len(types))
    return [
        ("tokenizer.ggml.model", STR, "llama"),
        ("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, vocab) + b"".join(gstr(t) for t in tokens)),
        ("tokenizer.ggml.scores", ARR, struct.pack("<IQ", F32, vocab) + np.zeros(vocab, "<f4").tobytes()),
        ("tokenizer.ggml.token_type", ARR, struct.pack("<IQ", I32, vocab) + np.array(types, "<i4").tobytes()),
        ("tokenizer.ggml.bos_token_id", U32, 1),
        ("tokenizer.ggml.eos_token_id", U32, 2),
        ("tokenizer.ggml.unknown_token_id", U32, 0),
        ("tokenizer.ggml.add_bos_token", BOOL, False),
        ("tokenizer.ggml.add_eos_token", BOOL, False),
    ]


def write_gguf(path, meta, tensors):
    """meta: [(key, kind, value)]; tensors: [(name, float32 array)], numpy (row-major) shapes."""
    meta = meta + [("general.alignment", U32, 32)]
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)))
    for key, kind, v in meta:
        out += gstr(key) + struct.pack("<I", kind) + (v if kind == ARR else value(kind, v))
    offset, blobs = 0, []
    for name, array in tensors:
        array = np.ascontiguousarray(array, dtype="<f4")
        out += gstr(name) + struct.pack("<I", array.ndim)
        out += b"".join(struct.pack("<Q", d) for d in reversed(array.shape))  # ggml: innermost first
        out += struct.pack("<IQ", 0, offset)
        blob = array.tobytes()
        blobs.append(blob + b"\0" * (-len(blob) % 32))
        offset += len(blobs[-1])
    out += b"\0" * (-len(out) % 32)
    with open(path, "wb") as f:
        f.write(out)
        for blob in blobs:
            f.write(blob)


# --- Hugging Face -> llama.cpp, per architecture ---------------------------------------------------

def permute(w, heads):
    # Meta's interleaved rotary layout, as convert_hf_to_gguf.py's LlamaModel.permute.
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_freqs(cfg, head_dim):
    # convert_hf_to_gguf.py LlamaModel: rope_freqs.weight holds the divisor of each frequency.
    s = cfg["rope_scaling"]
    base, factor = cfg["rope_theta"], s["factor"]
    low, high, old = s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def common_meta(arch, cfg, C, L, H, KV, I, V, context):
    return [
        ("general.architecture", STR, arch),
        ("general.name", STR, "tokmap-arch-made-tiny-random"),
        ("general.file_type", U32, 0),
        (f"{arch}.vocab_size", U32, V),
        (f"{arch}.context_length", U32, context),
        (f"{arch}.embedding_length", U32, C),
        (f"{arch}.block_count", U32, L),
        (f"{arch}.feed_forward_length", U32, I),
        (f"{arch}.attention.head_count", U32, H),
        (f"{arch}.attention.head_count_kv", U32, KV),
        (f"{arch}.pooling_type", U32, 0),
    ] + vocab_meta(V)


def convert_decoder(name, cfg, W):
    """llama (mistral, llama3rope), qwen3, gemma, gemma3: returns (arch, meta, tensors, deviations)."""
    mt = cfg["model_type"]
    arch = {"mistral": "llama", "llama": "llama", "qwen3": "qwen3", "gemma": "gemma",
            "gemma3_text": "gemma3"}[mt]
    C, L, V, I = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or C // H
    gemma_like = arch in ("gemma", "gemma3")
    deviations = []
    meta = common_meta(arch, cfg, C, L, H, KV, I, V, cfg["max_position_embeddings"])
    meta += [
        (f"{arch}.rope.dimension_count", U32, D),
        (f"{arch}.rope.freq_base", F32, cfg["rope_theta"]),
        (f"{arch}.attention.layer_norm_rms_epsilon", F32, cfg["rms_norm_eps"]),
        (f"{arch}.attention.key_length", U32, D),
        (f"{arch}.attention.value_length", U32, D),
    ]
    norm = (lambda w: w + np.float32(1)) if gemma_like else (lambda w: w)  # GGUF stores 1 + w
    q_gain = np.float32(1)
    if arch == "gemma3":
        meta += [
            ("gemma3.attention.sliding_window", U32, cfg["sliding_window"]),
            ("gemma3.attention.sliding_window_pattern", U32, cfg["sliding_window_pattern"]),
            ("gemma3.rope.freq_base_swa", F32, cfg["rope_local_base_freq"]),
        ]
        s = cfg.get("rope_scaling")
        if s:
            assert s["rope_type"] == "linear"
            meta += [("gemma3.rope.scaling.type", STR, "linear"), ("gemma3.rope.scaling.factor", F32, s["factor"])]
        if cfg["query_pre_attn_scalar"] != D:
            # llama.cpp scales queries by 1/sqrt(head_dim) (query_pre_attn_scalar is not read,
            # except for the 27B size); the normalised queries are scaled by
            # sqrt(head_dim / query_pre_attn_scalar) through the q_norm gains instead (RoPE is
            # linear, so this is the same product).
            q_gain = np.float32(math.sqrt(D / cfg["query_pre_attn_scalar"]))
            deviations.append(
                f"query_pre_attn_scalar {cfg['query_pre_attn_scalar']} != head_dim {D}: llama.cpp's gemma3 "
                f"scales queries by 1/sqrt(head_dim), so blk.*.attn_q_norm.weight holds (1 + w) * "
                f"sqrt({D}/{cfg['query_pre_attn_scalar']}) (an exact reparameterisation up to float32 rounding)")
    if mt == "mistral" and cfg.get("sliding_window"):
        deviations.append(
            f"sliding_window {cfg['sliding_window']}: llama.cpp runs Mistral as 'llama' without a sliding "
            "window (convert_hf_to_gguf.py writes none), so only the rows that the window cannot change "
            f"(token index < {cfg['sliding_window']}) are references: each seq file has min(n, "
            f"{cfg['sliding_window']}) rows")
    if mt == "llama" and cfg.get("rope_scaling"):
        assert cfg["rope_scaling"]["rope_type"] == "llama3"
    tensors = [("token_embd.weight", W["model.embed_tokens.weight"])]
    if mt == "llama" and cfg.get("rope_scaling"):
        tensors.append(("rope_freqs.weight", llama3_rope_freqs(cfg, D)))
    for l in range(L):
        h, b = f"model.layers.{l}.", f"blk.{l}."
        q, k = W[h + "self_attn.q_proj.weight"], W[h + "self_attn.k_proj.weight"]
        if arch == "llama":
            q, k = permute(q, H), permute(k, KV)
        tensors += [
            (b + "attn_norm.weight", norm(W[h + "input_layernorm.weight"])),
            (b + "attn_q.weight", q),
            (b + "attn_k.weight", k),
            (b + "attn_v.weight", W[h + "self_attn.v_proj.weight"]),
            (b + "attn_output.weight", W[h + "self_attn.o_proj.weight"]),
        ]
        if arch in ("qwen3", "gemma3"):
            tensors += [(b + "attn_q_norm.weight", norm(W[h + "self_attn.q_norm.weight"]) * q_gain),
                        (b + "attn_k_norm.weight", norm(W[h + "self_attn.k_norm.weight"]))]
        if arch == "gemma3":
            tensors += [(b + "post_attention_norm.weight", norm(W[h + "post_attention_layernorm.weight"])),
                        (b + "ffn_norm.weight", norm(W[h + "pre_feedforward_layernorm.weight"])),
                        (b + "post_ffw_norm.weight", norm(W[h + "post_feedforward_layernorm.weight"]))]
        else:
            tensors.append((b + "ffn_norm.weight", norm(W[h + "post_attention_layernorm.weight"])))
        tensors += [
            (b + "ffn_gate.weight", W[h + "mlp.gate_proj.weight"]),
            (b + "ffn_up.weight", W[h + "mlp.up_proj.weight"]),
            (b + "ffn_down.weight", W[h + "mlp.down_proj.weight"]),
        ]
    tensors.append(("output_norm.weight", norm(W["model.norm.weight"])))
    if "lm_head.weight" in W:
        tensors.append(("output.weight", W["lm_head.weight"]))
    return arch, meta, tensors, deviations


def bert_positions(cfg, ids):
    """The Hugging Face position ids of one text."""
    if cfg["model_type"] == "roberta":
        pad = cfg["pad_token_id"]
        mask = (np.array(ids) != pad).astype(np.int64)
        return np.cumsum(mask) * mask + pad
    return np.arange(len(ids))


def convert_encoder(name, cfg, W):
    """roberta and distilbert as llama.cpp 'bert'. The position table is returned separately: the
    file written holds it from row 0 (RoBERTa: rows pad_token_id + 1 ..., as convert_hf_to_gguf.py
    cuts it), the per-row evaluation files a table gathered for each text (see make())."""
    mt = cfg["model_type"]
    deviations = []
    if mt == "roberta":
        p = "roberta."
        C, L, H, I = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["intermediate_size"]
        eps = cfg["layer_norm_eps"]
        pos = W[p + "embeddings.position_embeddings.weight"]
        cut = cfg["pad_token_id"] + 1
        file_pos = pos[cut:]
        emb = [("token_embd.weight", W[p + "embeddings.word_embeddings.weight"]),
               ("token_types.weight", W[p + "embeddings.token_type_embeddings.weight"]),
               ("token_embd_norm.weight", W[p + "embeddings.LayerNorm.weight"]),
               ("token_embd_norm.bias", W[p + "embeddings.LayerNorm.bias"])]
        per_layer = lambda l: {
            "attn_q": f"{p}encoder.layer.{l}.attention.self.query", "attn_k": f"{p}encoder.layer.{l}.attention.self.key",
            "attn_v": f"{p}encoder.layer.{l}.attention.self.value",
            "attn_output": f"{p}encoder.layer.{l}.attention.output.dense",
            "attn_output_norm": f"{p}encoder.layer.{l}.attention.output.LayerNorm",
            "ffn_up": f"{p}encoder.layer.{l}.intermediate.dense", "ffn_down": f"{p}encoder.layer.{l}.output.dense",
            "layer_output_norm": f"{p}encoder.layer.{l}.output.LayerNorm"}
        types = cfg["type_vocab_size"]
        deviations.append(
            "RoBERTa runs as llama.cpp 'bert' (as convert_hf_to_gguf.py's RobertaModel does): model.gguf's "
            f"position_embd.weight is the Hugging Face table from row pad_token_id + 1 = {cut}, which is "
            "RoBERTa's position of every token of a text without padding ids. Hugging Face gives a "
            "pad_token_id inside a text position pad_token_id and does not count it (seq1 has one); llama.cpp "
            "knows no such rule, so each evaluation file's position table holds, at row i, the Hugging Face "
            "row of token i's position id (identical to model.gguf's for texts without padding ids)")
    else:
        p = "distilbert."
        C, L, H, I = cfg["dim"], cfg["n_layers"], cfg["n_heads"], cfg["hidden_dim"]
        eps = 1e-12  # DistilBERT's LayerNorms use eps 1e-12 (not in its config)
        pos = W[p + "embeddings.position_embeddings.weight"]
        file_pos = pos
        emb = [("token_embd.weight", W[p + "embeddings.word_embeddings.weight"]),
               ("token_embd_norm.weight", W[p + "embeddings.LayerNorm.weight"]),
               ("token_embd_norm.bias", W[p + "embeddings.LayerNorm.bias"])]
        per_layer = lambda l: {
            "attn_q": f"{p}transformer.layer.{l}.attention.q_lin", "attn_k": f"{p}transformer.layer.{l}.attention.k_lin",
            "attn_v": f"{p}transformer.layer.{l}.attention.v_lin",
            "attn_output": f"{p}transformer.layer.{l}.attention.out_lin",
            "attn_output_norm": f"{p}transformer.layer.{l}.sa_layer_norm",
            "ffn_up": f"{p}transformer.layer.{l}.ffn.lin1", "ffn_down": f"{p}transformer.layer.{l}.ffn.lin2",
            "layer_output_norm": f"{p}transformer.layer.{l}.output_layer_norm"}
        types = 1  # llama.cpp's bert needs the count; the converter writes type_vocab_size or 1
        deviations.append(
            "DistilBERT runs as llama.cpp 'bert' (as convert_hf_to_gguf.py's DistilBertModel does): no "
            "token_types tensor (llama.cpp's bert takes it as optional; tokenizer.ggml.token_type_count 1), "
            "LayerNorm eps 1e-12")
    V = emb[0][1].shape[0]
    meta = common_meta("bert", cfg, C, L, H, H, I, V, file_pos.shape[0])
    meta += [("bert.attention.layer_norm_epsilon", F32, eps), ("bert.attention.causal", BOOL, False)]
    if types:
        meta.append(("tokenizer.ggml.token_type_count", U32, types))
    layers = []
    for l in range(L):
        for gg, hf in per_layer(l).items():
            layers += [(f"blk.{l}.{gg}.weight", W[hf + ".weight"]), (f"blk.{l}.{gg}.bias", W[hf + ".bias"])]
    return "bert", meta, emb, layers, pos, file_pos, deviations


# --- running llama.cpp -------------------------------------------------------------------------

def run_node(jobs, workdir):
    """jobs: [{"model": path, "texts": [[ids]]}] -> per job, per text, the last token's state."""
    job_file = os.path.join(workdir, "jobs.json")
    out_file = os.path.join(workdir, "out.json")
    with open(job_file, "w") as f:
        json.dump(jobs, f)
    subprocess.run(["node", os.path.join(NODE_DIR, "references.mjs"), job_file, out_file], check=True, cwd=NODE_DIR)
    with open(out_file) as f:
        return json.load(f)


def write_npy(path, array):
    np.save(path, np.ascontiguousarray(array, dtype="<f4"))


def make(name, workdir):
    d = os.path.join(HERE, name)
    cfg = json.load(open(os.path.join(d, "hf", "config.json")))
    W = read_safetensors(os.path.join(d, "hf", "model.safetensors"))
    seqs = json.load(open(os.path.join(d, "inputs.json")))["sequences"]
    encoder = cfg["model_type"] in ("roberta", "distilbert")
    start = time.time()
    if not encoder:
        arch, meta, tensors, deviations = convert_decoder(name, cfg, W)
        gguf = os.path.join(d, "model.gguf")
        write_gguf(gguf, meta, tensors)
        rows = [len(s) for s in seqs]
        if cfg["model_type"] == "mistral" and cfg.get("sliding_window"):
            rows = [min(n, cfg["sliding_window"]) for n in rows]
        jobs = [{"model": gguf, "texts": [s[:k + 1] for s, n in zip(seqs, rows) for k in range(n)]}]
        method = ("prefix evaluation: row k = last-token embedding of tokens[0..k] evaluated from an "
                  "empty context (pooling none)")
        result = run_node(jobs, workdir)
        flat = result["jobs"][0]["embeddings"]
        states, i = [], 0
        for n in rows:
            states.append(np.array(flat[i:i + n], dtype=np.float64))
            i += n
    else:
        arch, meta, emb, layers, pos, file_pos, deviations = convert_encoder(name, cfg, W)
        gguf = os.path.join(d, "model.gguf")
        write_gguf(gguf, meta, emb[:1] + [("position_embd.weight", file_pos)] + emb[1:] + layers)
        jobs = []
        for s_i, s in enumerate(seqs):
            n = len(s)
            table = pos[bert_positions(cfg, s)]  # row i: token i's Hugging Face position row
            table = np.concatenate([table, file_pos[n:]])  # keep the file's context length
            for j in range(n):
                order = list(range(n))
                order[j], order[n - 1] = n - 1, j
                t = table.copy()
                t[[j, n - 1]] = t[[n - 1, j]]
                path = os.path.join(workdir, f"{name}_s{s_i}_r{j}.gguf")
                write_gguf(path, meta, emb[:1] + [("position_embd.weight", t)] + emb[1:] + layers)
                jobs.append({"model": path, "texts": [[s[o] for o in order]]})
        method = ("position-permutation: row j = last-token embedding after swapping tokens j<->n-1 and "
                  "rows j<->n-1 of position_embd.weight (pooling none), each row from its own GGUF copy "
                  "whose position table is gathered by the text's Hugging Face position ids")
        result = run_node(jobs, workdir)
        states, i = [], 0
        for s in seqs:
            states.append(np.array([result["jobs"][i + j]["embeddings"][0] for j in range(len(s))]))
            i += len(s)
    os.makedirs(os.path.join(d, "llamacpp"), exist_ok=True)
    entries = []
    for s_i, st in enumerate(states):
        rel = f"llamacpp/seq{s_i}.npy"
        write_npy(os.path.join(d, rel), st)
        entries.append({"file": rel, "shape": list(st.shape), "tokens": seqs[s_i]})
    meta_json = {
        "arch": arch,
        "hf_model_type": cfg["model_type"],
        "gguf": "model.gguf",
        "made_by": "tests/data/model/arch-made/make_llamacpp_references.py (bench/forward/llamacpp/references.mjs)",
        "method": method,
        "deviations": deviations,
        "sequences": entries,
        "normalisation": "none: raw llama_get_embeddings_ith(-1) values (node-llama-cpp copies them unchanged)",
        "context_options": result["context_options"],
        "runtime": result["runtime"],
        "seconds": round(time.time() - start, 3),
    }
    with open(os.path.join(d, "llamacpp", "meta.json"), "w") as f:
        json.dump(meta_json, f, indent=1)
    print(f"{name}: llama.cpp '{arch}', {sum(len(s) for s in states)} rows, "
          f"{os.path.getsize(os.path.join(d, 'model.gguf'))} bytes of GGUF")


def main():
    names = sys.argv[1:] or ["mistral", "qwen3", "gemma", "gemma3_text", "roberta", "distilbert", "llama3rope"]
    with tempfile.TemporaryDirectory(prefix="tokmap-llamacpp-") as workdir:
        for name in names:
            make(name, workdir)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (committed; rerun to regenerate).

Standard library only. Seeds are small valid inputs of each format plus a few near-misses,
so the fuzzer starts from deep inside each parser.
"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")


def put(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def byte_symbols():
    """GPT-2's bytes_to_unicode, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    symbols, extra = [], 0
    for b in range(256):
        if b in printable:
            symbols.append(chr(b))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, offset, blob = {}, 0, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blob += raw
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + blob


def f32(count, start=0.0):
    return struct.pack("<%df" % count, *[start + 0.01 * i for i in range(count)])


def tiny_model(prefix=""):
    # Matches fuzz_safetensors' config: n_layer 1, n_head 2, n_embd 4, n_positions 4, vocab 8.
    C, I, V, P = 4, 16, 8, 4
    shapes = {"wte.weight": [V, C], "wpe.weight": [P, C], "ln_f.weight": [C], "ln_f.bias": [C],
              "h.0.ln_1.weight": [C], "h.0.ln_1.bias": [C], "h.0.attn.c_attn.weight": [C, 3 * C],
              "h.0.attn.c_attn.bias": [3 * C], "h.0.attn.c_proj.weight": [C, C],
              "h.0.attn.c_proj.bias": [C], "h.0.ln_2.weight": [C], "h.0.ln_2.bias": [C],
              "h.0.mlp.c_fc.weight": [C, I], "h.0.mlp.c_fc.bias": [I],
              "h.0.mlp.c_proj.weight": [I, C], "h.0.mlp.c_proj.bias": [C]}
    tensors = []
    for name, shape in shapes.items():
        count = 1
        for d in shape:
            count *= d
        tensors.append((prefix + name, "F32", shape, f32(count)))
    return safetensors(tensors, {"format": "pt"})


def gguf(metadata, tensors, version=3, alignment=32):
    """metadata: list of (key, type, value) with type one of u32, f32, bool, str, [str], [f32],
    [i32]; tensors: list of (name, shape outermost first, ggml type, raw bytes)."""
    def string(text):
        data = text.encode("utf-8")
        return struct.pack("<Q", len(data)) + data

    codes = {"u32": (4, "<I"), "i32": (5, "<i"), "f32": (6, "<f"), "bool": (7, "<B")}
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, kind, value in metadata:
        out += string(key)
        if kind == "str":
            out += struct.pack("<I", 8) + string(value)
        elif kind == "[str]":
            out += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(string(v) for v in value)
        elif kind.startswith("["):
            code, fmt = codes[kind[1:-1]]
            out += struct.pack("<IIQ", 9, code, len(value)) + b"".join(
                struct.pack(fmt, v) for v in value)
        else:
            code, fmt = codes[kind]
            out += struct.pack("<I", code) + struct.pack(fmt, value)
    offset, offsets = 0, []
    for name, shape, ggml_type, data in tensors:
        out += string(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in reversed(shape))
        out += struct.pack("<IQ", ggml_type, offset)
        offsets.append(offset)
        offset += (len(data) + alignment - 1) // alignment * alignment
    out += b"\0" * (-len(out) % alignment)
    start = len(out)
    for (name, shape, ggml_type, data), at in zip(tensors, offsets):
        out += b"\0" * (start + at - len(out)) + data
    return out


def q8_0(count):
    """count values (a multiple of 32) as Q8_0 blocks: d = 1/64, q = -16..15."""
    block = struct.pack("<e", 1 / 64) + bytes((q & 0xFF) for q in range(-16, 16))
    return block * (count // 32)


def tiny_gguf(quantised=False):
    # llama, n_embd 4 (32 when quantised: Q8_0 rows are 32 values), 1 block, 2 heads, 1 KV head.
    C = 32 if quantised else 4
    I, V = 2 * C, 8
    D = C // 2

    def weight(rows, cols):
        if quantised:
            return (8, q8_0(rows * cols))
        return (0, f32(rows * cols, 0.01))

    tensors = [("token_embd.weight", [V, C]) + weight(V, C),
               ("blk.0.attn_norm.weight", [C], 0, f32(C, 1.0)),
               ("blk.0.attn_q.weight", [C, C]) + weight(C, C),
               ("blk.0.attn_k.weight", [D, C]) + weight(D, C),
               ("blk.0.attn_v.weight", [D, C]) + weight(D, C),
               ("blk.0.attn_output.weight", [C, C]) + weight(C, C),
               ("blk.0.ffn_norm.weight", [C], 0, f32(C, 1.0)),
               ("blk.0.ffn_gate.weight", [I, C]) + weight(I, C),
               ("blk.0.ffn_up.weight", [I, C]) + weight(I, C),
               ("blk.0.ffn_down.weight", [C, I]) + weight(C, I),
               ("output_norm.weight", [C], 0, f32(C, 1.0))]
    tokens = ["<unk>", "<s>", "</s>", "<0x41>", "\u2581", "a", "\u2581a", "aa"]
    metadata = [("general.architecture", "str", "llama"),
                ("llama.block_count", "u32", 1), ("llama.embedding_length", "u32", C),
                ("llama.feed_forward_length", "u32", I), ("llama.attention.head_count", "u32", 2),
                ("llama.attention.head_count_kv", "u32", 1), ("llama.context_length", "u32", 16),
                ("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5),
                ("llama.rope.freq_base", "f32", 10000.0),
                ("tokenizer.ggml.model", "str", "llama"), ("tokenizer.ggml.tokens", "[str]", tokens),
                ("tokenizer.ggml.scores", "[f32]", [0, 0, 0, 0, -1, -2, -0.5, -3]),
                ("tokenizer.ggml.token_type", "[i32]", [2, 3, 3, 6, 1, 1, 1, 1]),
                ("tokenizer.ggml.bos_token_id", "u32", 1)]
    return gguf(metadata, tensors)


def gpt2_vocab_gguf():
    tokens = byte_symbols() + ["\u0120t", "he", "\u0120the", "<|endoftext|>"]
    merges = ["\u0120 t", "h e", "\u0120t he"]
    return gguf([("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.pre", "str", "gpt-2"),
                 ("tokenizer.ggml.tokens", "[str]", tokens), ("tokenizer.ggml.merges", "[str]", merges),
                 ("tokenizer.ggml.token_type", "[i32]", [1] * 259 + [3])], [])


def main():
    put("fuzz_safetensors", "tiny_model", tiny_model())
    put("fuzz_safetensors", "tiny_model_prefixed", tiny_model("transformer."))
    put("fuzz_safetensors", "mixed_dtypes", safetensors([
        ("a", "F16", [2, 2], struct.pack("<4H", 0x3C00, 0xC000, 0x0001, 0x7BFF)),
        ("b", "BF16", [2], struct.pack("<2H", 0x3F80, 0x4049)),
        ("c", "I64", [3], struct.pack("<3q", 1, -2, 3)),
        ("d", "F64", [1], struct.pack("<d", 0.5)),
        ("e", "U8", [0], b""),
    ]))
    put("fuzz_safetensors", "empty_header", safetensors([]))
    put("fuzz_safetensors", "overlap", struct.pack("<Q", 120) + json.dumps(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode().ljust(120) + bytes(12))

    config = {"n_layer": 1, "n_head": 2, "n_embd": 4, "n_positions": 4, "vocab_size": 8,
              "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
              "model_type": "gpt2", "scale_attn_by_inverse_layer_idx": False}
    put("fuzz_config", "tiny", json.dumps(config))
    put("fuzz_config", "relu", json.dumps(dict(config, activation_function="relu", n_inner=8)))
    put("fuzz_config", "empty", "{}")

    # The loader requires every one of the 256 byte-level symbols (so decode inverts encode).
    vocab = {symbol: i for i, symbol in enumerate(byte_symbols())}
    for extra in ["aa", "ab", "th", "the", "Ġthe", "<|endoftext|>"]:
        vocab[extra] = len(vocab)
    merges = "#version: 0.2\na a\na b\nt h\nth e\nĠ the\n"
    put("fuzz_vocab_merges", "small", json.dumps(vocab, ensure_ascii=False) + "\0" + merges)
    put("fuzz_vocab_merges", "no_merges", json.dumps({"a": 0}) + "\0")
    tokenizer_json = {
        "version": "1.0",
        "added_tokens": [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>", "special": True}],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
        "model": {"type": "BPE", "vocab": vocab, "merges": merges.splitlines()[1:]},
    }
    put("fuzz_tokenizer_json", "small", json.dumps(tokenizer_json, ensure_ascii=False))
    put("fuzz_tokenizer_json", "pair_merges", json.dumps(dict(tokenizer_json, model=dict(
        tokenizer_json["model"], merges=[m.split(" ") for m in merges.splitlines()[1:]])), ensure_ascii=False))

    # Pipelines of every kind (the same ones fuzz/fuzz_pipelines.hpp builds) for
    # fuzz_pipeline_json, and texts for each of them (first byte: which one) for
    # fuzz_pipeline_encode.
    sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        sp_vocab["<0x%02X>" % b] = 3 + b
    for extra in ["\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab", "é"]:
        sp_vocab[extra] = len(sp_vocab)
    added = [{"id": 0, "content": "<unk>", "special": True}, {"id": 1, "content": "<s>", "special": True},
             {"id": 2, "content": "</s>", "special": True, "lstrip": True, "rstrip": True}]
    template = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    sp_decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    def llama_style(pre_tokenizer=None, normalizer=None):
        if normalizer is None:
            normalizer = {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "\u2581"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
        return {"added_tokens": added, "normalizer": normalizer, "pre_tokenizer": pre_tokenizer,
                "post_processor": template, "decoder": sp_decoder,
                "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                          "vocab": sp_vocab, "merges": [["\u2581", "a"], ["a", "b"], ["\u2581a", "b"]]}}
    pipelines = {
        "llama_style": llama_style(),
        "metaspace": llama_style({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}]},
            {"type": "NFKC"}),
        "split": llama_style({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\s+|\\p{N}{1,3}"}, "behavior": "MergedWithPrevious",
             "invert": False}, {"type": "Punctuation", "behavior": "Contiguous"}, {"type": "Whitespace"}]},
            {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"},
                                                 {"type": "Lowercase"}, {"type": "Strip"}]}),
        "wordpiece": {
            "added_tokens": [{"id": 0, "content": "[UNK]", "special": True},
                             {"id": 1, "content": "[CLS]", "special": True},
                             {"id": 2, "content": "[SEP]", "special": True},
                             {"id": 9, "content": "hello", "special": False, "single_word": True,
                              "normalized": True}],
            "normalizer": {"type": "BertNormalizer", "lowercase": True},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "max_input_chars_per_word": 20,
                      "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3, "##b": 4, "ab": 5, "##c": 6,
                                ",": 7, "e": 8, "hello": 9}}},
        "byte_level_roberta": dict(tokenizer_json, normalizer={"type": "NFC"},
                                   pre_tokenizer={"type": "Sequence", "pretokenizers": [
                                       {"type": "Split", "pattern": {"Regex": "\\p{L}+|\\s+"},
                                        "behavior": "Isolated", "invert": False},
                                       {"type": "ByteLevel", "add_prefix_space": True, "use_regex": False}]},
                                   post_processor={"type": "RobertaProcessing",
                                                   "sep": ["<|endoftext|>", vocab["<|endoftext|>"]],
                                                   "cls": ["<|endoftext|>", vocab["<|endoftext|>"]]},
                                   decoder={"type": "ByteLevel"}),
    }
    for name, pipeline in pipelines.items():
        put("fuzz_pipeline_json", name, json.dumps(pipeline, ensure_ascii=False))
    pipeline_texts = ["ab abc a b", "  ab\u00a0c  ", "é e\u0301 ﬁ ①", "<s>ab</s> ab", "日本 🤖 x",
                      "hello, HELLO hello's", "12345 a1b2", "\u2581\u2581a"]
    for i, text in enumerate(pipeline_texts):
        for selector in range(4):
            put("fuzz_pipeline_encode", "text%d_%d" % (i, selector), bytes([selector]) + text.encode("utf-8"))
    put("fuzz_pipeline_encode", "invalid", b"\x00ab\xff\xfe c\xe6\x9c")

    texts = ["Hello world", "I'm here, aren't you?", "  multiple   spaces\n\n\tand tabs",
             "naïve café — ünïcödé", "日本語のテキスト", "emoji 🤖🚀 mix", "<|endoftext|>x<|endoftext|>",
             "123 4567 89.0", "'s'S'LL 'd", "\xff\xfe invalid".encode("latin-1").decode("latin-1")]
    for i, text in enumerate(texts):
        put("fuzz_bpe_encode", "text%d" % i, text)
    put("fuzz_bpe_encode", "invalid_utf8", b"abc\xff\xc3(\xe2\x82def")

    def npy(descr, shape, raw, version=1):
        header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
        header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
        if version == 1:
            return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + raw
        return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header.encode() + raw

    put("fuzz_npy", "f4", npy("<f4", "(2, 3)", f32(6)))
    put("fuzz_npy", "f8_v2", npy("<f8", "(3, 1)", struct.pack("<3d", 1, 2, 3), version=2))
    put("fuzz_npy", "nan", npy("<f4", "(1, 2)", struct.pack("<2f", float("nan"), 1.0)))
    put("fuzz_tsv", "tsv", "\x001\t2\t3\n4\t5\t6\n")
    put("fuzz_tsv", "csv", "\x011,2\r\n-3.5e2, 4\n\n")
    put("fuzz_tsv", "ragged", "\x001\t2\n3\n")
    put("fuzz_gguf", "tiny_llama", tiny_gguf())
    put("fuzz_gguf", "tiny_llama_q8_0", tiny_gguf(quantised=True))
    put("fuzz_gguf", "gpt2_vocab", gpt2_vocab_gguf())
    put("fuzz_gguf", "version2", gguf([("general.alignment", "u32", 64), ("k", "[i32]", [1, 2])],
                                     [("t", [2, 32], 8, q8_0(64))], version=2, alignment=64))
    put("fuzz_gguf", "truncated", tiny_gguf()[:300])


if __name__ == "__main__":
    main()

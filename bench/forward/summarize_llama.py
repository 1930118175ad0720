#!/usr/bin/python3
"""Table of bench/forward/llama.sh's log: tokens/s of tokmap and llama.cpp per weight format and
thread count, the GFLOP/s that is, and its fraction of OpenBLAS's sgemm speed at the model's
matmul shapes on as many threads (the FLOP-weighted mean over the shapes: the time the matmuls
alone would take at sgemm speed; on N threads the larger of OpenBLAS's N-thread sgemm and N
times its one-thread speed, which is how tokmap runs its matmuls).

FLOPs per token: 2 x (the block matmuls' weights) x n_layer, plus causal attention
(2 x 2 x T/2 x head_dim x heads per token and layer at T = 256; the keys a query sees average
T/2). The embedding lookup and the LM head (llama.cpp: last token only) are left out.
"""
import json
import sys


def main(path):
    rows, sgemm, config, machine, checks = [], {}, None, {}, []
    for line in open(path):
        d = json.loads(line)
        if "machine" in d:
            machine = d["machine"]
        elif "config" in d:
            config = d["config"]
        elif "sgemm" in d:
            sgemm.setdefault(d["threads"], []).append(d)
        elif "check" in d:
            checks.append(d)
        elif "tokens_per_s" in d:
            rows.append(d)
    C, L = config["hidden_size"], config["num_hidden_layers"]
    H, KV, I = config["num_attention_heads"], config["num_key_value_heads"], config["intermediate_size"]
    D = C // H
    T = 256
    # (K, N, how many per block): q, k and v, o, gate and up, down.
    mats = [(C, H * D, 1), (C, KV * D, 2), (H * D, C, 1), (C, I, 2), (I, C, 1)]
    matmul = sum(2 * k * n * m for k, n, m in mats)
    attention = 2 * 2 * (T / 2) * D * H
    per_token = (matmul + attention) * L
    print(f"machine: {machine}")
    print(f"model: hidden {C}, {L} layers, {H} heads ({KV} KV), intermediate {I}, vocab "
          f"{config['vocab_size']}; {per_token / 1e9:.3f} GFLOP per token")
    peaks = {}
    for threads, entries in sgemm.items():
        by_shape = {e["sgemm"]: e["gflops"] for e in entries}
        seconds = sum(2 * k * n * m / (by_shape[f"256x{k}x{n}"] * 1e9) for k, n, m in mats)
        peaks[threads] = matmul / seconds / 1e9
        print(f"sgemm peak, {threads} thread(s): {peaks[threads]:.1f} GFLOP/s (" +
              ", ".join(f"{s} {g:.0f}" for s, g in by_shape.items()) + ")")
    # tokmap runs its matmuls as 256-row pieces on single-threaded BLAS, one piece per thread:
    # on N threads the peak is N x the one-thread speed where that beats OpenBLAS's own N-thread
    # sgemm of one piece.
    if 1 in peaks:
        for threads in list(peaks):
            if threads * peaks[1] > peaks[threads]:
                peaks[threads] = threads * peaks[1]
                print(f"sgemm peak, {threads} thread(s), as {threads} x 1 thread: {peaks[threads]:.1f} GFLOP/s")
    for c in checks:
        print(f"check: {c['check']}: {'identical' if c['identical'] else 'DIFFERENT'}")
    print()
    print("| tool | weights | threads | tokens/s | GFLOP/s | of sgemm peak |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        tool = r.get("tool", r.get("impl", "?"))
        threads = r["threads"]
        gflops = r["tokens_per_s"] * per_token / 1e9
        peak = peaks.get(threads)
        share = f"{100 * gflops / peak:.0f} %" if peak else "-"
        print(f"| {tool} | {r['weights']} | {threads} | {r['tokens_per_s']:.0f} | {gflops:.1f} | {share} |")


if __name__ == "__main__":
    main(sys.argv[1])

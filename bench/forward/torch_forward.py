#!/usr/bin/python3
"""PyTorch side of the forward-pass benchmark: a plain torch GPT-2 (Hugging Face GPT2Model
semantics, all n_layer + 1 hidden states, the last after ln_f) on the same weights and ids.

    torch_forward.py --model DIR --ids FILE [--threads 1,2] [--runs 5]
                     [--check TOKMAP_OUT.safetensors]

Prints one JSON object per line: timings (best and median of --runs after a warm-up, under
torch.inference_mode(), per thread count) and, with --check, the agreement with tokmap's
hidden states (max |diff| / max |ref| per layer, the reference being this PyTorch forward).
"""
import argparse
import json
import math
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    """name -> (numpy array view of the memory-mapped file, dtype string)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    dtypes = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = data[begin:end].view(dtypes[info["dtype"]]).reshape(info["shape"])
    return out, header.get("__metadata__", {})


class GPT2:
    def __init__(self, folder):
        with open(f"{folder}/config.json") as f:
            self.config = json.load(f)
        raw, _ = read_safetensors(f"{folder}/model.safetensors")
        prefix = "transformer." if "transformer.wte.weight" in raw else ""
        # Copy out of the mapping into torch-owned float32 tensors (as from_pretrained does).
        self.w = {k[len(prefix):]: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in raw.items()}
        self.n_layer = self.config["n_layer"]
        self.n_head = self.config["n_head"]
        self.eps = self.config.get("layer_norm_epsilon", 1e-5)
        assert self.config.get("activation_function", "gelu_new") == "gelu_new"

    def forward(self, ids):
        """ids: (B, T) int64. Returns the list of n_layer + 1 hidden states, each (B, T, C)."""
        w, H, eps = self.w, self.n_head, self.eps
        B, T = ids.shape
        C = w["wte.weight"].shape[1]
        hs = C // H
        x = w["wte.weight"][ids] + w["wpe.weight"][:T]
        states = [x]
        causal = torch.ones(T, T, dtype=torch.bool).tril_()
        scale = 1.0 / math.sqrt(hs)
        for l in range(self.n_layer):
            h = f"h.{l}."
            a = F.layer_norm(x, (C,), w[h + "ln_1.weight"], w[h + "ln_1.bias"], eps)
            qkv = torch.addmm(w[h + "attn.c_attn.bias"], a.view(B * T, C), w[h + "attn.c_attn.weight"])
            q, k, v = qkv.view(B, T, 3, H, hs).permute(2, 0, 3, 1, 4)  # each (B, H, T, hs)
            scores = torch.matmul(q, k.transpose(-1, -2)).mul_(scale)
            scores.masked_fill_(~causal, torch.finfo(scores.dtype).min)
            att = torch.matmul(torch.softmax(scores, dim=-1), v)  # (B, H, T, hs)
            att = att.transpose(1, 2).reshape(B * T, C)
            x = x + torch.addmm(w[h + "attn.c_proj.bias"], att, w[h + "attn.c_proj.weight"]).view(B, T, C)
            m = F.layer_norm(x, (C,), w[h + "ln_2.weight"], w[h + "ln_2.bias"], eps)
            m = torch.addmm(w[h + "mlp.c_fc.bias"], m.view(B * T, C), w[h + "mlp.c_fc.weight"])
            m = F.gelu(m, approximate="tanh")  # = Hugging Face's gelu_new
            x = x + torch.addmm(w[h + "mlp.c_proj.bias"], m, w[h + "mlp.c_proj.weight"]).view(B, T, C)
            if l + 1 < self.n_layer:
                states.append(x)
        states.append(F.layer_norm(x, (C,), w["ln_f.weight"], w["ln_f.bias"], eps))
        return states


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", help="tokmap embed output to compare with")
    args = parser.parse_args()

    with open(args.ids) as f:
        rows = [[int(t) for t in line.split()] for line in f if line.strip()]
    if len({len(r) for r in rows}) != 1:
        raise SystemExit("torch_forward: texts must all have the same length (one batch)")
    ids = torch.tensor(rows, dtype=torch.int64)
    start = time.perf_counter()
    model = GPT2(args.model)
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "load_s": round(time.perf_counter() - start, 3),
                      "batch": list(ids.shape)}), flush=True)

    states = None
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        times, cpu_times = [], []
        with torch.inference_mode():
            for r in range(args.runs + 1):  # run 0 is the warm-up
                start, cpu_start = time.perf_counter(), time.process_time()
                out = model.forward(ids)
                elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
                if r > 0:
                    times.append(elapsed)
                    cpu_times.append(cpu)
                if states is None:
                    states = out
                del out
        best = min(times)
        print(json.dumps({"impl": "pytorch", "threads": threads, "layers": len(states), "runs": args.runs,
                          "best_s": round(best, 4), "median_s": round(sorted(times)[len(times) // 2], 4),
                          "tokens_per_s": round(ids.numel() / best, 1),
                          "times_s": [round(t, 4) for t in times], "min_cpu_s": round(min(cpu_times), 4)}),
              flush=True)

    if args.check:
        tensors, metadata = read_safetensors(args.check)
        hidden = tensors["hidden_states"]  # (layers, N, C)
        layers = json.loads(metadata["layers"])
        got_ids = np.asarray(tensors["input_ids"])
        ok_ids = bool(np.array_equal(got_ids, ids.numpy().reshape(-1)))
        per_layer = []
        for slot, layer in enumerate(layers):
            ref = states[layer].reshape(-1, states[layer].shape[-1]).numpy()
            diff = np.abs(np.asarray(hidden[slot], dtype=np.float64) - ref).max()
            per_layer.append(float(diff / np.abs(ref).max()))
        last = per_layer[layers.index(len(states) - 1)] if len(states) - 1 in layers else None
        print(json.dumps({"check": args.check, "input_ids_equal": ok_ids, "layers": layers,
                          "last_rel_err": last, "max_rel_err_all_layers": max(per_layer),
                          "rel_err_per_layer": [float(f"{e:.3g}") for e in per_layer],
                          "ok": ok_ids and last is not None and last <= 1e-4}), flush=True)


if __name__ == "__main__":
    main()

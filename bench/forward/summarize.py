#!/usr/bin/python3
"""Prints the forward-pass benchmark table from bench/out/forward-results.jsonl (run.sh)."""
import json
import sys


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/out/forward-results.jsonl"
    rounds, machine, extra, round_no = [], {}, [], 0
    with open(path) as f:
        for line in f:
            if not line.strip().startswith("{"):
                continue
            obj = json.loads(line)
            if "machine" in obj:
                machine = obj["machine"]
            elif "round" in obj:
                round_no = obj["round"]
                rounds.append({"round": round_no})
            elif "impl" in obj and "threads" in obj:
                rounds[-1][f"{obj['impl']}_t{obj['threads']}"] = obj["tokens_per_s"]
                if "min_cpu_s" in obj:
                    tokens = obj["tokens_per_s"] * obj["best_s"]
                    rounds[-1][f"{obj['impl']}_t{obj['threads']}_cpu"] = tokens / obj["min_cpu_s"]
            elif "openblas_core" in obj and rounds:
                rounds[-1]["openblas_core"] = obj["openblas_core"]
            elif "check" in obj and rounds:
                rounds[-1]["check"] = obj
            elif "embed" in obj and rounds and not obj["embed"].startswith("memory"):
                key = "embed_t1" if "--threads 1" in obj["embed"] else "embed"
                rounds[-1][key] = obj["tokens"] / obj["wall_s"]
                rounds[-1][key + "_wall"] = obj["wall_s"]
            else:
                extra.append(obj)

    print(f"machine: {machine.get('nproc')} CPUs, {machine.get('cpu')}, "
          f"OPENBLAS_CORETYPE={machine.get('OPENBLAS_CORETYPE')}, "
          f"OpenBLAS core in use: {rounds[0].get('openblas_core', '?') if rounds else '?'}")
    print("batch 4 x 256 tokens, GPT-2-small shape, all 13 hidden states; tokens/s (higher is better)\n")
    cols = ["tokmap_t1", "tokmap_t2", "pytorch_t1", "pytorch_t2"]
    head = f"| round | tokmap 1 thr | tokmap 2 thr | PyTorch 1 thr | PyTorch 2 thr | tokmap best / PyTorch best | tokmap embed, whole command (2 thr / 1 thr) | max rel. err (last layer) |"
    print(head)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    ratios = []
    for r in rounds:
        tok = max(r.get("tokmap_t1", 0), r.get("tokmap_t2", 0))
        pt = max(r.get("pytorch_t1", 0), r.get("pytorch_t2", 0))
        ratio = tok / pt if pt else float("nan")
        ratios.append(ratio)
        check = r.get("check", {})
        err = check.get("last_rel_err")
        err_text = f"{err:.1e}" + ("" if check.get("ok") else " FAIL") if err is not None else "-"
        embed = (f"{r.get('embed', 0):.0f} ({r.get('embed_wall', 0):.1f} s) / "
                 f"{r.get('embed_t1', 0):.0f} ({r.get('embed_t1_wall', 0):.1f} s)")
        print(f"| {r['round']} | " + " | ".join(f"{r.get(c, 0):.0f}" for c in cols) +
              f" | {ratio:.2f}x | {embed} | {err_text} |")
    if rounds:
        best = {c: max(r.get(c, 0) for r in rounds) for c in cols}
        tok, pt = max(best["tokmap_t1"], best["tokmap_t2"]), max(best["pytorch_t1"], best["pytorch_t2"])
        print(f"| best of rounds | " + " | ".join(f"{best[c]:.0f}" for c in cols) +
              f" | {tok / pt:.2f}x | | |")
        print(f"\nratio per round: min {min(ratios):.2f}x, max {max(ratios):.2f}x "
              f"(goal: >= 1.2x; {'met' if min(ratios) >= 1.2 else 'not met' if max(ratios) < 1.2 else 'met in some rounds only'})")
    if rounds and all("tokmap_t1_cpu" in r and "pytorch_t1_cpu" in r for r in rounds):
        print("\n1-thread runs measured in process CPU time instead of wall time (less sensitive to other "
              "programs on the machine): tokens per CPU-second, tokmap / PyTorch:")
        for r in rounds:
            print(f"  round {r['round']}: {r['tokmap_t1_cpu']:.0f} / {r['pytorch_t1_cpu']:.0f} = "
                  f"{r['tokmap_t1_cpu'] / r['pytorch_t1_cpu']:.2f}x")
    for obj in extra:
        if "embed" in obj:
            print(f"{obj['embed']}: wall {obj['wall_s']} s, max RSS {obj['max_rss_kb'] / 1024:.0f} MiB")
        elif "output_file" in obj:
            print(f"{obj['output_file']}: {obj['bytes'] / 2**20:.0f} MiB")
        elif "breakdown" in obj:
            print(f"kernel {obj['breakdown']}: {obj['ms_per_block']:.1f} ms/block"
                  + (f", {obj['share'] * 100:.0f}%" if "share" in obj else "")
                  + (f", {obj['gflops']:.1f} GFLOP/s" if obj.get("gflops") else "")
                  + (f" (whole model ~ {obj['ms_model_estimate']:.0f} ms)" if "ms_model_estimate" in obj else ""))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Driver of the `tokmap viz` end-to-end benchmark (run through bench/viz/run.sh).

    bench.py --tokmap build/tokmap --text bench/viz/text100.txt --case NAME=MODEL ...
             [--rounds 3] [--runs 3] [--log bench/out/viz/results.jsonl]

Per case (a model: bundled name or folder) and round, back to back and interleaved run by run:
  - tokmap viz --file TEXT --model MODEL --layers all --dims 2,3 --seed 0 --out DIR  (everything)
  - the same with --no-figures                                            (breakdown)
  - tokmap embed --layers all (load + tokenize + forward + write)         (breakdown, 1 run)
  - bench/viz/notebook.py on the same ids, perplexity and model folder    (the notebook way)
Wall times are taken around each process (start to exit); CPU time is the child's user+sys.
The best of --runs per round is reported, and the spread over rounds. One untimed warm-up of
each command comes first (page cache). Prints a table; appends JSON lines to --log.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd, cwd=None):
    """Runs cmd; returns (wall seconds, cpu seconds, stdout, stderr). Fails loudly."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        sys.exit(f"bench.py: failed ({result.returncode}): {' '.join(cmd)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout, result.stderr


def machine():
    model = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "src"],
                           capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": model,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "<unset>"),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": commit + (" (src/ modified in the work tree)" if dirty else "")}


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokmap", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--case", action="append", required=True, help="NAME=MODEL (bundled name or folder)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default="bench/out/viz")
    parser.add_argument("--log", default="bench/out/viz/results.jsonl")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    # Absolute paths: tokmap runs next to a model folder (see below).
    args.tokmap, args.text, args.work = (os.path.abspath(p) for p in (args.tokmap, args.text, args.work))
    log = open(args.log, "a")

    def emit(obj):
        log.write(json.dumps(obj) + "\n")
        log.flush()

    facts = machine()
    emit({"machine": facts})

    # Same tokens for both tools: tokmap's tokenizer, checked to be about 100 tokens.
    out = subprocess.run([args.tokmap, "tokenize", "--file", args.text, "--json"], check=True,
                         capture_output=True, text=True).stdout
    objects = [json.loads(line) for line in out.splitlines() if line.strip()]
    tokens = sum(len(o["ids"]) for o in objects)
    ids_path = os.path.join(args.work, "text.ids")
    labels_path = os.path.join(args.work, "text.labels.json")
    with open(ids_path, "w") as f:
        f.write("".join(" ".join(map(str, o["ids"])) + "\n" for o in objects))
    with open(labels_path, "w") as f:
        json.dump([o["display"] for o in objects], f)
    print(f"text: {args.text}: {len(objects)} text(s), {tokens} tokens "
          f"({tokens - len(objects)} mapped: tokmap leaves out each text's first token)", file=sys.stderr)

    cases = []
    for spec in args.case:
        name, model = spec.split("=", 1)
        # The notebook needs a folder; tokmap resolves bundled names to models/<name>.
        folder = os.path.abspath(model if os.path.isdir(model) else os.path.join("models", model))
        cases.append((name, model, folder))

    def tokmap_cwd(model):
        """tokmap viz names files after --model, and a value with '/' in it (a folder path) breaks
        its Projector export (tensors-<model>-layerL.tsv); so a model folder is passed by its
        bare name, with tokmap started in the folder's parent."""
        return os.path.dirname(os.path.abspath(model)) if os.path.isdir(model) else None

    def tokmap_model(model):
        return os.path.basename(os.path.abspath(model)) if os.path.isdir(model) else model

    def commands(name, model, folder, perplexity=None):
        model = tokmap_model(model)
        report = os.path.join(args.work, f"report-{name}")
        viz = [args.tokmap, "viz", "--model", model, "--file", args.text, "--layers", "all",
               "--dims", "2,3", "--seed", "0", "--out", report]
        cmds = {"tokmap": viz, "tokmap_nofig": viz[:-2] + ["--out", report + "-nofig", "--no-figures"],
                "embed": [args.tokmap, "embed", "--model", model, "--file", args.text, "--layers", "all",
                          "--quiet", "--out", os.path.join(args.work, f"embed-{name}.safetensors")]}
        if perplexity is not None:
            cmds["notebook"] = [PY, os.path.join(HERE, "notebook.py"), "--model", folder, "--ids", ids_path,
                                "--labels", labels_path, "--perplexity", str(perplexity),
                                "--out", os.path.join(args.work, f"notebook-{name}"), "--seed", "0"]
        return cmds

    # Warm-up (untimed): page cache, and tokmap's perplexity choice for the notebook.
    perplexities = {}
    for name, model, folder in cases:
        _, _, _, err = timed(commands(name, model, folder)["tokmap"], cwd=tokmap_cwd(model))
        m = re.search(r"perplexity ([0-9.]+) for (\d+) tokens", err)
        if not m:
            sys.exit("bench.py: tokmap viz did not print its perplexity:\n" + err)
        perplexities[name] = float(m.group(1))
        summary = [line for line in err.splitlines() if "wrote" in line]
        print(f"{name}: tokmap chose perplexity {m.group(1)} for {m.group(2)} tokens; {summary[-1] if summary else ''}",
              file=sys.stderr)
        timed(commands(name, model, folder, perplexities[name])["notebook"])

    results = {}  # (case, what) -> list per round of {"wall": best, "cpu": cpu of best run}
    notebook_stages = {}
    for r in range(1, args.rounds + 1):
        for name, model, folder in cases:
            cmds = commands(name, model, folder, perplexities[name])
            runs = {k: [] for k in ("tokmap", "tokmap_nofig", "notebook", "embed")}
            emit({"round": r, "case": name, "load_before": load()})
            print(f"round {r}/{args.rounds}, {name}: load {load():.1f} ...", file=sys.stderr)
            for i in range(args.runs):
                for what in ("tokmap", "tokmap_nofig", "notebook") + (("embed",) if i == 0 else ()):
                    wall, cpu, stdout, _ = timed(cmds[what], cwd=None if what == "notebook" else tokmap_cwd(model))
                    record = {"round": r, "case": name, "what": what, "run": i + 1,
                              "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
                    if what == "notebook":
                        record["stages"] = json.loads(stdout.strip().splitlines()[-1])
                    runs[what].append(record)
                    emit(record)
            for what, rs in runs.items():
                best = min(rs, key=lambda x: x["wall_s"])
                results.setdefault((name, what), []).append(best)
                if what == "notebook":
                    notebook_stages.setdefault(name, []).append(best["stages"])

    # --- Table ------------------------------------------------------------------------------------
    def spread(name, what, key="wall_s"):
        values = [x[key] for x in results[(name, what)]]
        return min(values), max(values), values

    print()
    print(f"machine: {facts['nproc']} CPUs, {facts['cpu']}, OPENBLAS_CORETYPE={facts['OPENBLAS_CORETYPE']}, "
          f"commit {facts['commit']}, {facts['date']}")
    print(f"best of {args.runs} runs per round, {args.rounds} round(s); 'min – max' over rounds\n")
    print("| case | tokmap s | notebook s | ratio (per round) | tokmap CPU s | notebook CPU s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, _, _ in cases:
        t_lo, t_hi, t = spread(name, "tokmap")
        n_lo, n_hi, nb = spread(name, "notebook")
        ratios = [b / a for a, b in zip(t, nb)]
        tc = [x["cpu_s"] for x in results[(name, "tokmap")]]
        nc = [x["cpu_s"] for x in results[(name, "notebook")]]
        print(f"| {name} | {t_lo:.2f} – {t_hi:.2f} | {n_lo:.2f} – {n_hi:.2f} | "
              f"{min(ratios):.1f}× – {max(ratios):.1f}× | {min(tc):.2f} – {max(tc):.2f} | {min(nc):.2f} – {max(nc):.2f} |")
    print()
    print("Breakdown (best wall per round, min – max over rounds):\n")
    print("| case | tokmap viz | --no-figures | figures (difference) | tokmap embed --layers all | "
          "notebook imports | load | forward | t-SNE (2D+3D) | PNGs | notebook in-process total |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, _, _ in cases:
        full = [x["wall_s"] for x in results[(name, "tokmap")]]
        nofig = [x["wall_s"] for x in results[(name, "tokmap_nofig")]]
        figs = [a - b for a, b in zip(full, nofig)]
        emb = [x["wall_s"] for x in results[(name, "embed")]]
        st = notebook_stages[name]

        def rng(values):
            return f"{min(values):.2f} – {max(values):.2f}"
        print(f"| {name} | {rng(full)} | {rng(nofig)} | {rng(figs)} | {rng(emb)} | "
              f"{rng([s['imports_s'] for s in st])} | {rng([s['load_s'] for s in st])} | "
              f"{rng([s['forward_s'] for s in st])} | {rng([s['tsne_s'] for s in st])} | "
              f"{rng([s['figures_s'] for s in st])} | {rng([s['total_in_process_s'] for s in st])} |")
    print()
    for name, _, _ in cases:
        s = notebook_stages[name][0]
        print(f"{name}: perplexity {perplexities[name]:g}, {s['tokens']} tokens x {s['layers']} layers, "
              f"{s['maps']} maps; torch {s['torch']} ({s['torch_threads']} thread(s) by default), "
              f"sklearn {s['sklearn']}, matplotlib {s['matplotlib']}")
    frame = "web/test-artifacts/frame-time.json"
    if os.path.exists(frame):
        with open(frame) as f:
            print(f"\n{frame} (web/run-tests.sh, {time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(frame)))}): "
                  + json.dumps(json.load(f)))
    emit({"summary": {f"{k[0]}/{k[1]}": [x["wall_s"] for x in v] for k, v in results.items()}})


if __name__ == "__main__":
    main()

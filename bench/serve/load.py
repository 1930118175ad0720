"""Latency of tokmap serve on loopback (see run.sh): sequential place requests, then a load of
concurrent clients. Standard library only (http.client), one connection per client."""
import argparse
import http.client
import json
import threading
import time
import urllib.parse

SENTENCE = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
            "it was the age of foolishness.")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)

    def post(self, path, body):
        data = json.dumps(body)
        start = time.perf_counter()
        self.conn.request("POST", path, data, {"Content-Type": "application/json"})
        r = self.conn.getresponse()
        payload = r.read()
        return r.status, payload, time.perf_counter() - start


def cpu_seconds(pid):
    import os
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] * 1000 if v else float("nan")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--per-client", type=int, default=25)
    a = p.parse_args()

    c = Client(a.url)
    status, payload, _ = c.post("/api/v1/place", {"texts": [SENTENCE]})
    assert status == 200, payload
    tokens = len(json.loads(payload)["tokens"])
    for _ in range(5):  # warm-up
        c.post("/api/v1/place", {"texts": [SENTENCE]})
    sequential = []
    cpu_start = cpu_seconds(a.pid)
    for i in range(a.requests):
        status, payload, t = c.post("/api/v1/place", {"texts": [SENTENCE]})
        assert status == 200, payload
        sequential.append(t)
    cpu_per_place = (cpu_seconds(a.pid) - cpu_start) / a.requests
    rss_before = rss_mb(a.pid)

    times = {"place": [], "map": []}
    errors = []
    lock = threading.Lock()

    def client(k):
        me = Client(a.url)
        for i in range(a.per_client):
            text = f"Client {k} asks question {i} about the bank of the river and the age of wisdom."
            if i % 2 == 0:
                kind, body = "place", {"texts": [text]}
            else:
                kind, body = "map", {"texts": [text], "layers": "last", "dims": [2],
                                     "iterations": 250, "logit_lens": False}
            try:
                status, payload, t = me.post(f"/api/v1/{kind}", body)
            except Exception as e:  # noqa: BLE001 (counted, not raised)
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                if status != 200:
                    errors.append(f"{status} {payload[:100]!r}")
                else:
                    times[kind].append(t)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    rss_after = rss_mb(a.pid)
    result = {
        "atlas_tokens": 20000, "sentence_tokens": tokens,
        "sequential_place_ms": {"p50": percentile(sequential, 0.5), "p95": percentile(sequential, 0.95),
                                "n": len(sequential), "server_cpu_ms_each": cpu_per_place * 1000},
        "load": {"clients": a.clients, "per_client": a.per_client, "wall_s": wall,
                 "errors": len(errors),
                 "place_ms": {"p50": percentile(times["place"], 0.5), "p95": percentile(times["place"], 0.95)},
                 "map_ms": {"p50": percentile(times["map"], 0.5), "p95": percentile(times["map"], 0.95)},
                 "rss_mb_before": rss_before, "rss_mb_after": rss_after},
    }
    print(json.dumps(result, indent=2))
    if errors:
        print("errors:", errors[:5])
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

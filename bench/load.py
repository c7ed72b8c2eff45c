"""A small HTTP load driver, run as its own process so it does not share the server's GIL.

    python -m bench.load '<json spec>'

The spec names a target on loopback and a request template; `{i}` in the path or
body is replaced by a per-request counter, so every request can use a fresh address.
With "paths_file" (one path per line), request i goes to line i instead (wrapping),
for paths that cannot be generated, such as per-person unsubscribe links.
Modes: "closed" (N connections as fast as answers come, for a duration) and "rate"
(a fixed arrival rate for a count of requests, latency measured from the scheduled
start so queueing delay counts). Prints one JSON object with the figures.
"""

import http.client
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlparse

MAX_SECONDS = 300  # every run stops by itself


def _request(target: Any, spec: dict[str, Any], i: int) -> int:
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    try:
        body = spec.get("body", "").replace("{i}", str(i)).encode()
        paths = spec.get("paths")
        path = paths[i % len(paths)] if paths else spec["path"].replace("{i}", str(i))
        conn.request(spec.get("method", "GET"), path, body=body or None, headers=spec.get("headers", {}))
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}

    def add(self, seconds: float, status: int) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] = self.statuses.get(status, 0) + 1


def _closed(target: Any, spec: dict[str, Any], recorder: Recorder) -> float:
    deadline = time.perf_counter() + min(spec["duration"], MAX_SECONDS)
    counter = iter(range(spec.get("start", 0), 10**12))
    counter_lock = threading.Lock()

    def worker() -> None:
        while time.perf_counter() < deadline:
            with counter_lock:
                i = next(counter)
            started = time.perf_counter()
            status = _request(target, spec, i)
            recorder.add(time.perf_counter() - started, status)

    threads = [threading.Thread(target=worker) for _ in range(spec["concurrency"])]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _rate(target: Any, spec: dict[str, Any], recorder: Recorder) -> float:
    interval = 1.0 / spec["rate"]
    count = spec["count"]
    begin = time.perf_counter() + 0.05
    next_index = iter(range(count))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                n = next(next_index, None)
            if n is None:
                return
            scheduled = begin + n * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if time.perf_counter() - begin > MAX_SECONDS:
                return
            status = _request(target, spec, spec.get("start", 0) + n)
            recorder.add(time.perf_counter() - scheduled, status)

    threads = [threading.Thread(target=worker) for _ in range(spec.get("concurrency", 32))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - begin


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(raw: str) -> dict[str, Any]:
    spec = json.loads(raw)
    if spec.get("paths_file"):
        with open(spec["paths_file"]) as lines:
            spec["paths"] = [line.strip() for line in lines if line.strip()]
    target = urlparse(spec["base"])
    if target.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("bench.load only targets loopback")
    recorder = Recorder()
    elapsed = _closed(target, spec, recorder) if spec["mode"] == "closed" else _rate(target, spec, recorder)
    done = len(recorder.latencies)
    return {
        "requests": done,
        "rps": round(done / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(recorder.latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(recorder.latencies, 0.99) * 1000, 2),
        "statuses": recorder.statuses,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))

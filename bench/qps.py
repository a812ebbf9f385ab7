"""`make bench-qps`: saturated query throughput of the real server against the encoders' own cost, in one run.

Writes bench/results/qps.json and qps.md. Steps:

1. the per-query model time: each encoder loaded with one thread, encoding distinct questions
   one at a time (what a query costs a core); the ideal rate is cores / that time;
2. ``tanya serve`` over the corpus index (real encoders, default settings), 32 clients (``wrk``, a C
   load generator, where it is installed: ``apt-get install wrk``; else Python's httpx) sending
   distinct questions (every one a query-cache miss) to ``/v1/search`` and then ``/v1/ask`` for a
   fixed time: requests per second, errors, latency;
3. the same with questions repeated from a small set (query-cache hits).

The issue's target: saturated QPS at least 0.9 x cores / per-query model time, with 0 errors.
Timings belong here, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stress import CORPUS, ROOT, index, serve  # bench/stress.py: the server helpers

from bench import cpu_name, pct  # bench/bench.py: both run as scripts from bench/

RESULTS = ROOT / "bench" / "results"


def distinct_questions(data: Path) -> list[str]:
    """Distinct real questions (TyDi QA-id and IDK-MRC train, SQuAD 2.0), in a fixed order."""
    from eval.squad import load_squad

    seen: dict[str, None] = {}
    for path in (data / "tydiqa-id" / "train.json", data / "idk-mrc" / "train.json",
                 data / "squad2-en" / "train-10-articles.json"):
        for item in load_squad(path).items:
            seen.setdefault(" ".join(item.question.split()), None)
    return list(seen)


def model_time_ms(questions: list[str], embedder_ids: list[str]) -> dict[str, float]:
    """Mean milliseconds to encode one question on one thread, per encoder and in all."""
    from indexer.embedders.e5 import E5SmallEmbedder
    from indexer.embedders.use import UseM3Embedder

    factories = {"e5-small": lambda: E5SmallEmbedder(num_threads=1), "use-m3": lambda: UseM3Embedder(threads=1)}
    out: dict[str, float] = {}
    for embedder_id in embedder_ids:
        embedder = factories[embedder_id]()
        for question in questions[:20]:  # warm-up
            embedder.embed_queries([question])
        started = time.perf_counter()
        for question in questions:
            embedder.embed_queries([question])
        out[embedder_id] = (time.perf_counter() - started) * 1000 / len(questions)
    out["total"] = sum(out.values())
    return out


async def _load(url: str, path: str, questions: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent clients, each sending the next question as soon as its last one is answered."""
    cursor = 0
    records: list[tuple[int, float]] = []
    failures: list[str] = []

    async def client(http: httpx.AsyncClient, end: float) -> None:
        nonlocal cursor
        while time.monotonic() < end:
            question = questions[cursor % len(questions)]
            cursor += 1
            sent = time.monotonic()
            try:
                if path == "/v1/search":
                    response = await http.get(path, params={"q": question})
                else:
                    response = await http.post(path, json={"question": question})
                records.append((response.status_code, (time.monotonic() - sent) * 1000))
            except httpx.HTTPError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        started = time.monotonic()
        await asyncio.gather(*(client(http, started + seconds) for _ in range(clients)))
        elapsed = time.monotonic() - started
    ok = [ms for status, ms in records if status == 200]
    return {
        "path": path, "clients": clients, "seconds": round(elapsed, 1), "requests": len(records),
        "qps": round(len(ok) / elapsed, 1), "errors": len(records) - len(ok) + len(failures),
        "p50_ms": round(pct(ok, 50), 1), "p99_ms": round(pct(ok, 99), 1), "distinct_questions": len(set(questions)),
    }


#: wrk's Lua side: each connection sends the next request of a prepared list (every question once, in order),
#: and ``done`` prints the totals as one JSON line (latencies are in microseconds).
WRK_SCRIPT = """
local requests, cursor = {}, 0
init = function(_)  -- formatted here, not when the script loads: only then do wrk's headers hold the Host
  for line in io.lines(os.getenv("QPS_REQUESTS")) do
    local method, target, body = line:match("^(%u+) (%S+) ?(.*)$")
    local headers = {}
    if body ~= "" then headers["Content-Type"] = "application/json" else body = nil end
    requests[#requests + 1] = wrk.format(method, target, headers, body)
  end
end
request = function()
  cursor = cursor + 1
  return requests[(cursor - 1) % #requests + 1]
end
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _load_wrk(url: str, path: str, questions: list[str], clients: int, seconds: float, work: Path) -> dict[str, Any]:
    """The same load as :func:`_load`, sent by ``wrk`` (C, one thread): a Python client on the same two cores
    took 6-10 % of their time, which the server then lacked (README, Speed)."""
    requests_file, script = work / "wrk-requests.txt", work / "wrk.lua"
    with requests_file.open("w", encoding="utf-8") as out:
        for question in questions[: max(1, int(seconds * 1000))]:  # more than the server can answer meanwhile
            if path == "/v1/search":
                out.write(f"GET {path}?q={urllib.parse.quote(question)}\n")
            else:
                out.write(f"POST {path} {json.dumps({'question': question})}\n")
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "60s", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "QPS_REQUESTS": str(requests_file)},
                          check=True, timeout=seconds + 120)
    totals = json.loads(done.stdout.strip().splitlines()[-1])
    elapsed = totals["duration_us"] / 1e6
    errors = totals["non_2xx"] + totals["socket_errors"]
    return {
        "path": path, "clients": clients, "seconds": round(elapsed, 1), "requests": totals["requests"],
        "qps": round((totals["requests"] - totals["non_2xx"]) / elapsed, 1), "errors": errors,
        "p50_ms": round(totals["p50_us"] / 1000, 1), "p99_ms": round(totals["p99_us"] / 1000, 1),
        "distinct_questions": len(set(questions)),
    }


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def markdown(result: dict[str, Any]) -> str:
    model = result["model_ms_one_thread"]
    lines = [
        f"# `make bench-qps`, {result['date']}",
        "",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores. Encoders: {', '.join(result['encoders'])}.",
        "",
        f"Per-query model time on one thread: {model['total']:.1f} ms, the mean of "
        f"{' and '.join(f'{v:.1f}' for v in result['model_ms_before_and_after'])} before and after the loads "
        f"({', '.join(f'{k} {v:.1f}' for k, v in model.items() if k != 'total')}); "
        f"ideal rate cores / model time = {result['ideal_qps']:.1f} queries/s.",
        "",
        f"Server settings beyond the defaults: {', '.join(f'TANYA_{k.upper()}={v}' for k, v in result['settings'].items()) or 'none'}.",
        f"Load generator: {result.get('load_generator', 'httpx')} on the same machine.",
        "",
        "| run | path | questions | clients | QPS | QPS / ideal | errors | p50 ms | p99 ms | server CPU ms / request | load generator's share of the CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['name']} | `{run['path']}` | {run['distinct_questions']:,} distinct | {run['clients']} | "
            f"{run['qps']} | {run['qps'] / result['ideal_qps']:.2f} | {run['errors']} | {run['p50_ms']} | {run['p99_ms']} | "
            f"{run['server_cpu_ms_per_request']} | {run['client_cpu_share']:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "eval-data")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--embedders", default="e5-small,use-m3")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a server setting for this run, e.g. --set query_batch=8 (TANYA_QUERY_BATCH)")
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto",
                        help="load generator: wrk (C) where installed (auto), else Python's httpx")
    parser.add_argument("--only", choices=("search", "ask", "repeated"), action="append",
                        help="run only these loads (default: all three)")
    args = parser.parse_args()
    chosen = dict(item.split("=", 1) for item in args.set)
    client = ("wrk" if shutil.which("wrk") else "httpx") if args.client == "auto" else args.client
    os.environ["STRESS_EMBEDDERS"] = args.embedders
    embedder_ids = args.embedders.split(",")

    questions = distinct_questions(args.data)
    # Model time is measured before and after the loads and averaged: this shared host drifts by 10-15 %
    # within minutes (16.9 to 19.6 ms in one hour), which moved the ratio more than the server did.
    before = model_time_ms(questions[5000:5300], embedder_ids)
    cores = os.cpu_count() or 1
    runs = []
    with tempfile.TemporaryDirectory(prefix="tanya-qps-") as tmp:
        work = Path(tmp)
        index_dir = work / "index"
        built = index(CORPUS, index_dir)
        if built.returncode != 0:
            print(built.stderr, file=sys.stderr)
            return 1
        with serve(index_dir, work, **{"reload_poll_s": "0", "rate_limit_per_minute": "0", **chosen}) as server:
            plan = {
                "search": ("distinct (cache misses)", "/v1/search", questions[: 200_000]),
                "ask": ("distinct (cache misses)", "/v1/ask", questions[::-1]),
                "repeated": ("repeated (cache hits)", "/v1/search", questions[:50]),
            }
            for name, path, pool in (plan[key] for key in args.only or plan):
                server_cpu, client_cpu = cpu_seconds(server.process.pid), time.process_time() + _children_cpu_seconds()
                if client == "wrk":
                    run = _load_wrk(server.url, path, pool, args.clients, args.seconds, work)
                else:
                    run = asyncio.run(_load(server.url, path, pool, args.clients, args.seconds))
                run["name"] = name
                # CPU the server and this load generator used: both share the machine's cores.
                served = max(1, int(run["qps"] * run["seconds"]))
                run["server_cpu_ms_per_request"] = round((cpu_seconds(server.process.pid) - server_cpu) * 1000 / served, 1)
                client_used = time.process_time() + _children_cpu_seconds() - client_cpu
                run["client_cpu_share"] = round(client_used / (run["seconds"] * cores), 3)
                runs.append(run)
                print(f"qps: {name} {path}: {run['qps']}/s, errors {run['errors']}", file=sys.stderr)
    after = model_time_ms(questions[5000:5300], embedder_ids)
    model = {key: (before[key] + after[key]) / 2 for key in before}
    ideal = cores * 1000 / model["total"]
    print(f"qps: model time {model['total']:.1f} ms a query on one thread; ideal {ideal:.1f}/s", file=sys.stderr)
    result = {
        "encoders": embedder_ids,
        "model_ms_before_and_after": [round(before["total"], 2), round(after["total"], 2)],
        "model_ms_one_thread": {k: round(v, 2) for k, v in model.items()},
        "ideal_qps": round(ideal, 1), "settings": chosen, "load_generator": client, "runs": runs,
        "machine": {"cpu": cpu_name(), "cores": cores}, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "qps.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "qps.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

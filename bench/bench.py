"""`make bench`: indexing time, in-process answer latency per mode, and HTTP throughput.

Writes bench/results/latest.json and bench/results/latest.md (and a dated copy). Timings
belong here, never in tests. Run on an otherwise idle machine; the figures name the CPU.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUESTIONS = [
    "Who selects Tokutei Ginou workers?",
    "Berapa target peserta magang ke Jepang?",
    "How many participants does the apprenticeship programme target?",
    "Apa tujuan program magang METI?",
    "What research method did the Tokutei Ginou study use?",
    "Siapa Menteri Ketenagakerjaan yang disebut dalam berita?",
    "What is the capital of France?",
    "Kapan Kemnaker dan IM Japan sepakat meningkatkan program pemagangan?",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_index(index_dir: Path) -> dict[str, float]:
    from indexer.embedders import load_embedders
    from indexer.pipeline import build_index
    from service.config import Settings

    settings = Settings(index_dir=index_dir)
    started = time.perf_counter()
    embedders = load_embedders(settings.embedders)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    report = build_index([ROOT / "corpus"], settings.index, embedders)
    full_s = time.perf_counter() - started
    started = time.perf_counter()
    noop = build_index([ROOT / "corpus"], settings.index, embedders)
    noop_s = time.perf_counter() - started
    assert not noop.changed
    return {"encoder_load_s": load_s, "full_index_s": full_s, "noop_reindex_s": noop_s,
            "chunks": report.chunks, "sentences": report.sentences, "texts_embedded": report.texts_embedded}


def bench_latency(index_dir: Path, rounds: int = 5) -> dict[str, dict[str, float]]:
    from service.config import Settings
    from service.qa.engine import Engine

    # The questions repeat: without the query-vector cache every one is encoded, as a new question is.
    engine = Engine.load(Settings(index_dir=index_dir, query_cache_size=0).engine)
    engine.warm_up()
    out = {}
    for mode in ("lexical", "dense", "hybrid"):
        times = []
        for _ in range(rounds):
            for q in QUESTIONS:
                started = time.perf_counter()
                engine.ask(q, mode=mode)
                times.append((time.perf_counter() - started) * 1000)
        out[mode] = {"n": len(times), "p50_ms": pct(times, 50), "p95_ms": pct(times, 95),
                     "mean_ms": statistics.fmean(times)}
    return out


def bench_reranker(index_dir: Path, rounds: int = 5) -> dict[str, object]:
    """The answer with the reranker against the bare forward passes it needs, in the same run.

    "Bare" is, per question: each query encoder's ``embed_queries`` plus the reader's pass(es)
    over the very passages the answer read (the same two-step reading). The ratio of the p50s is the overhead of
    everything else (BM25, fusion, support scores, citations).
    """
    from service.config import Settings
    from service.qa.engine import Engine

    settings = Settings(index_dir=index_dir, reranker="on", query_cache_size=0)
    engine = Engine.load(settings.engine)
    engine.warm_up()
    reranker = engine.answerer.reranker
    assert reranker is not None
    candidates = settings.reranker_candidates
    ask_ms: list[float] = []
    bare_ms: list[float] = []
    stages: dict[str, list[float]] = {}
    for _ in range(rounds):
        for q in QUESTIONS:
            started = time.perf_counter()
            answer = engine.ask(q)
            ask_ms.append((time.perf_counter() - started) * 1000)
            for name, ms in answer.timings_ms.items():
                if name != "total" and not name.startswith("encoder:"):
                    stages.setdefault(name, []).append(ms)
            # The same candidates, found again outside the clock.
            query = engine.analyser.analyse(q, "hybrid")
            passages = engine.retriever.search(query, settings.answer_candidate_passages)
            groups = engine.answerer.reading_groups(passages)
            texts = engine.answerer.reading_texts(groups)
            foreign = engine.answerer.reading_foreign(query, groups)
            started = time.perf_counter()
            for embedder in engine.embedders:
                embedder.embed_queries([q])
            # The passes the answer made: none when the support rule had already abstained, else the
            # same one- or two-step reading (the cascade stops on the same scores).
            if "rerank" in answer.timings_ms:
                reranker.read(q, texts, foreign, engine.config.answer.reranker.cascade)
            bare_ms.append((time.perf_counter() - started) * 1000)
    total = sum(sum(v) for v in stages.values())
    return {
        "n": len(ask_ms), "candidates": candidates, "precision": getattr(reranker, "precision", "?"),
        "ask_p50_ms": pct(ask_ms, 50), "ask_p95_ms": pct(ask_ms, 95),
        "bare_p50_ms": pct(bare_ms, 50), "bare_p95_ms": pct(bare_ms, 95),
        "ratio_p50": pct(ask_ms, 50) / pct(bare_ms, 50),
        "stage_share": {k: sum(v) / total for k, v in sorted(stages.items())},
        "stage_p50_ms": {k: pct(v, 50) for k, v in sorted(stages.items())},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_http(index_dir: Path, requests: int = 200, concurrency: int = 4, reranker: bool = False) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "TANYA_INDEX_DIR": str(index_dir), "TANYA_RELOAD_POLL_S": "0", "TANYA_QUERY_CACHE_SIZE": "0",
           "TANYA_RERANKER": "on" if reranker else "off"}
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not become ready")
        latencies: list[float] = []
        errors = 0

        def one(i: int) -> None:
            nonlocal errors
            started = time.perf_counter()
            r = client.post(base + "/v1/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]})
            latencies.append((time.perf_counter() - started) * 1000)
            if r.status_code != 200:
                errors += 1

        with httpx.Client(timeout=30) as client:
            for i in range(8):
                one(i)  # warm-up
            latencies.clear()
            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(one, range(requests)))
            wall = time.perf_counter() - started
        return {"requests": requests, "concurrency": concurrency, "errors": errors, "req_per_s": requests / wall,
                "p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95)}
    finally:
        server.terminate()
        server.wait(timeout=15)


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tanya-bench-"))
    try:
        index_dir = work / "index"
        result = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
            "settings": "defaults (e5-small + use-m3, hybrid, 256-token chunks)",
            "index": bench_index(index_dir),
            "ask_latency_in_process": bench_latency(index_dir),
            "reranker": bench_reranker(index_dir),
            "http_ask_single": bench_http(index_dir, requests=80, concurrency=1),
            "http_ask_single_reranker": bench_http(index_dir, requests=80, concurrency=1, reranker=True),
            "http_ask": bench_http(index_dir),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2)
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"{result['date'][:10]}.json").write_text(text)
    idx, lat, http = result["index"], result["ask_latency_in_process"], result["http_ask"]
    rr, single, single_rr = result["reranker"], result["http_ask_single"], result["http_ask_single_reranker"]
    md = [
        f"# Benchmark {result['date']}",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, Python {result['machine']['python']}.",
        "",
        f"- Indexing the corpus ({idx['chunks']} chunks, {idx['sentences']} sentences, {idx['texts_embedded']} texts "
        f"× 2 encoders): {idx['full_index_s']:.1f} s; no-op re-index: {idx['noop_reindex_s']:.2f} s; "
        f"encoder load: {idx['encoder_load_s']:.1f} s.",
        "",
        "| mode | p50 ms | p95 ms |",
        "|---|---|---|",
        *[f"| {m} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} |" for m, v in lat.items()],
        "",
        f"Answer reader ({rr['precision']}, at most {rr['candidates']} sentences, {rr['n']} questions): answer p50 "
        f"{rr['ask_p50_ms']:.0f} ms, p95 {rr['ask_p95_ms']:.0f} ms; bare forward passes (query encoders + the reader on "
        f"the same passages) p50 {rr['bare_p50_ms']:.0f} ms; ratio {rr['ratio_p50']:.2f}. Stage shares: "
        + ", ".join(f"{k} {v:.0%} (p50 {rr['stage_p50_ms'][k]:.0f} ms)" for k, v in rr["stage_share"].items()) + ".",
        "",
        f"HTTP `POST /v1/ask`, one client ({single['requests']} requests): p50 {single['p50_ms']:.1f} ms, "
        f"p95 {single['p95_ms']:.1f} ms, {single['errors']} errors; with the reranker on: p50 "
        f"{single_rr['p50_ms']:.1f} ms, p95 {single_rr['p95_ms']:.1f} ms, {single_rr['errors']} errors.",
        "",
        f"HTTP `POST /v1/ask` ({http['requests']} requests, {http['concurrency']} concurrent clients): "
        f"{http['req_per_s']:.1f} req/s, p50 {http['p50_ms']:.1f} ms, p95 {http['p95_ms']:.1f} ms, "
        f"{http['errors']} errors.",
    ]
    (RESULTS / "latest.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

"""`make stress`: the service under hostile input, killed indexers, a long soak and bad documents.

Four parts, each against real processes on loopback (``tanya serve``, ``tanya index``) with the
default encoders unless said otherwise:

- ``schema``: Schemathesis against the service's own ``/openapi.json``, with and without an API
  key configured. Pass: 0 responses >= 500 (counted by the server's own metrics) and 0 contract
  violations (every check but "positive data acceptance": the API refuses some schema-valid
  questions on purpose, such as "???", and JSON Schema cannot say so).
- ``kill``: SIGKILL ``tanya index`` at random points while the service serves. Pass, each trial:
  the old build keeps answering, and the next ``tanya index`` completes, leaves no debris and is
  picked up by the service.
- ``soak``: 32 concurrent clients mixing ask, search and documents, a share of them expensive.
  Pass: no errors other than the designed 429/503 (and the 422 for questions over the token
  bound), p99 of the last minute within 25% of the first, and RSS growth under 5%.
- ``baddocs``: a folder of broken files. Pass: each is skipped with a warning naming it, the
  good files are indexed, and ``tanya index`` exits 3 (written, some files skipped).

Writes bench/results/stress.json and stress.md. Timings belong here, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import QUESTIONS, cpu_name, pct  # bench/bench.py: both run as scripts from bench/

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CORPUS = ROOT / "corpus"
PYTHON = sys.executable
ST = str(Path(PYTHON).with_name("st"))
SCHEMA_CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]
START_TIMEOUT_S = 180.0

#: An ordinary long question (about 200 encoder tokens: accepted, and the costliest kind that is).
LONG_QUESTION = (
    "Saya lulusan SMK jurusan teknik mesin dari Jawa Tengah dan sedang mempertimbangkan beberapa jalur "
    "untuk bekerja di Jepang. Teman saya bilang ada program magang lewat LPK dan ada juga jalur Tokutei "
    "Ginou yang katanya gajinya lebih tinggi. Saya ingin tahu lembaga mana di Indonesia yang menyeleksi "
    "pekerja untuk program Tokutei Ginou, berapa target peserta magang yang disepakati Kemnaker dengan "
    "IM Japan, dan apa tujuan program magang METI bagi mahasiswa dari luar negeri, supaya saya bisa "
    "memilih jalur yang paling cocok dengan latar belakang pendidikan dan pengalaman kerja saya."
)
#: Questions over the 256-token bound: refused with a designed 422 before any encoding.
COSTLY_QUESTIONS = ["日本" * 300, "a\u0301" * 400, "a!" * 400]


# --- processes --------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tanya_env(index_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a ``tanya`` process: no inherited TANYA_* settings, these ones instead.

    The encoders are the run's (``--embedders``, kept in STRESS_EMBEDDERS) unless ``settings`` names others.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANYA_")}
    env.update({"TANYA_INDEX_DIR": str(index_dir), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    env["TANYA_EMBEDDERS"] = os.environ.get("STRESS_EMBEDDERS", "e5-small,use-m3")
    env.update({f"TANYA_{key.upper()}": value for key, value in settings.items()})
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def server_errors(self) -> int:
        """Responses >= 500 the server itself counted (its Prometheus request counter)."""
        text = httpx.get(self.url + "/metrics", timeout=30).text
        total = 0.0
        for line in text.splitlines():
            match = re.match(r'tanya_http_requests_total\{.*status="(\d+)".*\} ([0-9.e+]+)', line)
            if match and int(match.group(1)) >= 500:
                total += float(match.group(2))
        return int(total)

    def ready(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/readyz", timeout=30).json())


@contextlib.contextmanager
def serve(index_dir: Path, work: Path, **settings: str) -> Iterator[Server]:
    """``tanya serve`` on a free port until the block ends (then SIGTERM, or SIGKILL if it hangs)."""
    port = free_port()
    log = work / f"server-{port}.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [PYTHON, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=work, env=tanya_env(index_dir, **settings), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def index(corpus: Path, index_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "service.cli", "index", str(corpus), "--json"],
        env=tanya_env(index_dir, **settings), capture_output=True, text=True, timeout=900,
    )


# --- schema ------------------------------------------------------------------------------------------------------
def run_schema(work: Path, index_dir: Path, max_examples: int) -> dict[str, Any]:
    """Schemathesis, with and without keys configured; cases, failures and the server's 5xx count."""
    runs = {}
    for name, settings, headers in (
        ("open", {}, []),
        # The failed-key limiter is off here: Schemathesis sends wrong keys on purpose, and a 429
        # after ten of them is the designed answer, not a contract violation (tests cover it).
        ("with API key", {"api_keys": "stress-key", "auth_failures_per_minute": "0"}, ["-H", "X-API-Key: stress-key"]),
    ):
        with serve(index_dir, work, reload_poll_s="0", **settings) as server:
            started = time.perf_counter()
            run = subprocess.run(
                [ST, "run", f"{server.url}/openapi.json", *SCHEMA_CHECKS, "--max-examples", str(max_examples),
                 "--workers", "2", "--suppress-health-check", "all", "--seed", "2026", *headers],
                cwd=work, capture_output=True, text=True, timeout=3600,
            )
            cases = re.search(r"(\d+) generated", run.stdout)
            failures = re.search(r"(\d+) unique failures?", run.stdout)
            runs[name] = {
                "cases": int(cases.group(1)) if cases else 0,
                "contract_violations": int(failures.group(1)) if failures else (0 if run.returncode == 0 else -1),
                "responses_5xx": server.server_errors(),
                "exit_status": run.returncode,
                "seconds": round(time.perf_counter() - started, 1),
            }
            if run.returncode != 0:
                runs[name]["report_tail"] = run.stdout[-4000:]
    passed = all(r["exit_status"] == 0 and r["responses_5xx"] == 0 and r["cases"] >= 1000 for r in runs.values())
    return {"runs": runs, "passed": passed}


# --- kill -9 during indexing ------------------------------------------------------------------------------------
def debris(index_dir: Path) -> list[str]:
    builds = index_dir.parent / f"{index_dir.name}.builds"
    left = [p.name for p in builds.glob("*.partial")]
    left += [p.name for p in index_dir.parent.glob(f".{index_dir.name}.link-*")]
    return left


def run_kill(work: Path, trials: int, seed: int) -> dict[str, Any]:
    """SIGKILL ``tanya index`` at random points while the service answers from the previous build."""
    rng = random.Random(seed)
    corpus = work / "kill-corpus"
    shutil.copytree(CORPUS, corpus)
    index_dir = work / "kill-index"
    first = index(corpus, index_dir)
    if first.returncode != 0:
        raise RuntimeError(first.stderr)
    target = sorted(corpus.glob("*.txt"))[0]
    # How long a whole run takes once a document changed: kills land anywhere in it.
    target.write_text(target.read_text(encoding="utf-8") + "\nCatatan revisi awal.\n", encoding="utf-8")
    started = time.perf_counter()
    index(corpus, index_dir)
    full_s = time.perf_counter() - started
    results = []
    with serve(index_dir, work, reload_poll_s="0.5") as server:
        for trial in range(trials):
            old_build = server.ready()["index_build"]
            target.write_text(target.read_text(encoding="utf-8") + f"\nCatatan revisi {trial}.\n", encoding="utf-8")
            # Half the kills anywhere, half in the last third, where the build is written and swapped in.
            delay = rng.uniform(0.2, full_s) if trial % 2 == 0 else rng.uniform(0.66 * full_s, 1.05 * full_s)
            process = subprocess.Popen(
                [PYTHON, "-m", "service.cli", "index", str(corpus)], env=tanya_env(index_dir),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(delay)
            finished_first = process.poll() is not None
            process.kill()
            process.wait()
            answer = httpx.post(server.url + "/v1/ask", json={"question": QUESTIONS[trial % len(QUESTIONS)]}, timeout=60)
            serving = server.ready()["index_build"]
            left_after_kill = debris(index_dir)
            rerun = index(corpus, index_dir)
            new_build = json.loads(rerun.stdout)["build_id"] if rerun.returncode == 0 else None
            picked_up = False
            for _ in range(100):
                if server.ready()["index_build"] == new_build:
                    picked_up = True
                    break
                time.sleep(0.1)
            ok = (
                answer.status_code == 200
                and serving in (old_build, new_build)
                and rerun.returncode == 0
                and not debris(index_dir)
                and picked_up
            )
            results.append({
                "trial": trial, "kill_after_s": round(delay, 2), "run_had_finished": finished_first,
                "answer_status": answer.status_code, "served_old_build": serving == old_build,
                "debris_after_kill": len(left_after_kill), "rerun_status": rerun.returncode,
                "debris_after_rerun": len(debris(index_dir)), "new_build_served": picked_up, "survived": ok,
            })
        server_5xx = server.server_errors()
    survived = sum(r["survived"] for r in results)
    return {
        "trials": trials, "survived": survived, "full_run_s": round(full_s, 1), "responses_5xx": server_5xx,
        "killed_with_debris": sum(r["debris_after_kill"] > 0 for r in results),
        "results": results, "passed": survived == trials and server_5xx == 0,
    }


# --- soak ----------------------------------------------------------------------------------------------------------
@dataclass
class Soak:
    records: list[tuple[float, str, int, float]] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)


async def _client(http: httpx.AsyncClient, rng: random.Random, end: float, start: float, soak: Soak, docs: list[str]) -> None:
    while time.monotonic() < end:
        roll = rng.random()
        if roll < 0.55:
            kind, request = "ask", http.post("/v1/ask", json={"question": rng.choice(QUESTIONS)})
        elif roll < 0.75:
            kind, request = "search", http.get("/v1/search", params={"q": rng.choice(QUESTIONS)})
        elif roll < 0.85:
            doc = rng.choice(docs)
            kind, request = "documents", http.get(f"/v1/documents/{doc}" if rng.random() < 0.5 else "/v1/documents")
        elif roll < 0.93:
            kind, request = "long", http.post("/v1/ask", json={"question": LONG_QUESTION})
        else:
            kind, request = "costly", http.post("/v1/ask", json={"question": rng.choice(COSTLY_QUESTIONS)})
        sent = time.monotonic()
        try:
            response = await request
            soak.records.append((sent - start, kind, response.status_code, (time.monotonic() - sent) * 1000))
        except httpx.HTTPError as exc:
            soak.exceptions.append(f"{kind}: {type(exc).__name__}: {exc}")


def designed(kind: str, status: int) -> bool:
    """Statuses the design gives under load: 429/503, and 422 for questions over the token bound."""
    return status == 200 or status in (429, 503) or (kind == "costly" and status == 422)


def run_soak(work: Path, index_dir: Path, seconds: int, clients: int, seed: int) -> dict[str, Any]:
    soak = Soak()
    rss: list[tuple[float, float]] = []
    with serve(index_dir, work, reload_poll_s="0") as server:
        docs = [d["doc_id"] for d in httpx.get(server.url + "/v1/documents", timeout=30).json()["documents"]]

        async def main() -> None:
            start = time.monotonic()
            end = start + seconds
            limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
            async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
                tasks = [
                    asyncio.create_task(_client(http, random.Random(seed + i), end, start, soak, docs))
                    for i in range(clients)
                ]
                while time.monotonic() < end:
                    rss.append((time.monotonic() - start, server.rss_mb()))
                    await asyncio.sleep(5)
                await asyncio.gather(*tasks)
            rss.append((time.monotonic() - start, server.rss_mb()))

        asyncio.run(main())
        server_5xx = server.server_errors()
    minutes = max(1, seconds // 60)
    per_minute = []
    for minute in range(minutes):
        window = [r for r in soak.records if minute * 60 <= r[0] < (minute + 1) * 60]
        latencies = [r[3] for r in window]
        per_minute.append({
            "minute": minute + 1, "requests": len(window),
            "p50_ms": round(pct(latencies, 50), 1) if latencies else None,
            "p99_ms": round(pct(latencies, 99), 1) if latencies else None,
            "designed_429_503": sum(r[2] in (429, 503) for r in window),
        })
    errors = [r for r in soak.records if not designed(r[1], r[2])]
    rss_first = next((v for t, v in rss if t >= min(60, seconds / 5)), rss[0][1])
    rss_last = rss[-1][1]
    growth = (rss_last - rss_first) / rss_first * 100
    p99_first, p99_last = per_minute[0]["p99_ms"], per_minute[-1]["p99_ms"]
    p99_ratio = (p99_last / p99_first) if p99_first and p99_last else float("nan")
    by_kind: dict[str, dict[str, int]] = {}
    for _, kind, status, _ in soak.records:
        by_kind.setdefault(kind, {}).setdefault(str(status), 0)
        by_kind[kind][str(status)] += 1
    return {
        "seconds": seconds, "clients": clients, "requests": len(soak.records),
        "throughput_rps": round(len(soak.records) / seconds, 1),
        "errors": len(errors) + len(soak.exceptions), "exceptions": soak.exceptions[:10],
        "responses_5xx": server_5xx, "designed_429_503": sum(r[2] in (429, 503) for r in soak.records),
        "by_kind": by_kind, "per_minute": per_minute, "p99_last_over_first": round(p99_ratio, 2),
        "rss_mb_after_minute_1": round(rss_first, 1), "rss_mb_at_end": round(rss_last, 1),
        "rss_growth_pct": round(growth, 2),
        "passed": not errors and not soak.exceptions and p99_ratio <= 1.25 and growth < 5,
    }


# --- bad documents -------------------------------------------------------------------------------------------------
def make_bad_documents(folder: Path) -> dict[str, str]:
    """A folder of broken files; returns each bad file's name and what it is."""
    from pypdf import PdfWriter

    folder.mkdir(parents=True)
    (folder / "good.txt").write_text("Program Tokutei Ginou membuka jalur kerja ke Jepang.", encoding="utf-8")
    (folder / "with-broken-sidecar.txt").write_text("IM Japan mengelola program magang.", encoding="utf-8")
    (folder / "with-broken-sidecar.txt.meta.json").write_text('{"languages": 5, "kind": {"x": 1}}')
    (folder / "unparseable-sidecar.txt").write_text("METI menjalankan program internship.", encoding="utf-8")
    (folder / "unparseable-sidecar.txt.meta.json").write_text("{not json")
    (folder / "日本.txt").write_text("Dokumen dengan nama berhuruf Jepang.", encoding="utf-8")
    (folder / "ジャパン.txt").write_text("Dokumen kedua dengan nama berhuruf Jepang.", encoding="utf-8")
    bad = {
        "empty.txt": "empty", "binary.txt": "binary", "invalid-utf8.txt": "invalid UTF-8",
        "oversized.txt": "oversized", "scan.pdf": "a PDF with no text layer", "outward-link.txt": "an outward symlink",
        "unreadable.txt": "an unreadable file", "locked": "an unreadable folder", "dangling.md": "a link to nothing",
    }
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02 binary \x00" * 50)
    (folder / "invalid-utf8.txt").write_bytes(b"Teks \x81\x8d\x8f\x90\x9d rusak")  # not UTF-8 nor Windows-1252
    (folder / "oversized.txt").write_text("Kata. " * 5000, encoding="utf-8")
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    with (folder / "scan.pdf").open("wb") as handle:
        writer.write(handle)
    (folder / "outward-link.txt").symlink_to("/etc/hostname")
    (folder / "dangling.md").symlink_to(folder / "deleted.md")
    (folder / "unreadable.txt").write_text("Tidak bisa dibaca.", encoding="utf-8")
    (folder / "unreadable.txt").chmod(0)
    (folder / "locked").mkdir()
    (folder / "locked" / "inside.txt").write_text("Di dalam folder terkunci.", encoding="utf-8")
    (folder / "locked").chmod(0)
    return bad


def run_baddocs(work: Path) -> dict[str, Any]:
    """Index the bad folder (as an unprivileged user when run as root, so permissions mean something)."""
    work.chmod(0o755)
    area = work / "baddocs"
    area.mkdir()
    area.chmod(0o777)
    folder = area / "docs"
    bad = make_bad_documents(folder)
    command = [PYTHON, "-m", "service.cli", "index", str(folder), "--json"]
    as_user = "current user"
    if os.geteuid() == 0 and shutil.which("setpriv"):
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        as_user = "nobody (the run is root, which reads any file)"
    env = tanya_env(area / "index", embedders="fake", max_file_bytes="10000", tiktoken_cache_dir=str(area / "tiktoken"))
    env["HOME"] = str(area)
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=area)
    report = json.loads(run.stdout) if run.stdout.strip() else {}
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    named = {name: any(name in line for line in warnings) for name in bad}
    skipped = sorted(Path(s["path"]).name for s in report.get("skipped", []))
    sidecar_warnings = sum("meta.json" in line for line in warnings)
    good = {"good", "with-broken-sidecar", "unparseable-sidecar"}
    indexed = set(report.get("embedded_documents", [])) | set(report.get("reused_documents", []))
    passed = (
        run.returncode == 3 and all(named.values()) and sorted(bad) == skipped
        and good <= indexed and report.get("documents") == 5 and sidecar_warnings >= 3
    )
    return {
        "ran_as": as_user, "exit_status": run.returncode, "documents_indexed": report.get("documents"),
        "bad_files": bad, "warned": named, "skipped": skipped, "sidecar_warnings": sidecar_warnings,
        "warnings": warnings, "passed": passed,
    }


# --- report --------------------------------------------------------------------------------------------------------
def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# `make stress`, {result['date']}",
        "",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores. "
        f"Encoders: {result['encoders']}. Total {result['seconds']:.0f} s.",
        "",
    ]
    if "schema" in result:
        lines += ["## Schemathesis", "", "| configuration | cases | 5xx | contract violations | s |", "|---|---|---|---|---|"]
        for name, run in result["schema"]["runs"].items():
            lines.append(
                f"| {name} | {run['cases']:,} | {run['responses_5xx']} | {run['contract_violations']} | {run['seconds']} |"
            )
        lines.append("")
    if "kill" in result:
        k = result["kill"]
        lines += [
            "## kill -9 during indexing", "",
            f"{k['survived']}/{k['trials']} trials survived (old build answered; the next run completed, left no "
            f"debris and was served); {k['killed_with_debris']} kills left debris that the next run removed; "
            f"5xx during the trials: {k['responses_5xx']}. A whole run takes {k['full_run_s']} s.", "",
        ]
    if "soak" in result:
        s = result["soak"]
        lines += [
            "## Soak", "",
            f"{s['seconds']} s, {s['clients']} clients, {s['requests']:,} requests ({s['throughput_rps']}/s); "
            f"errors {s['errors']}, 5xx {s['responses_5xx']}, designed 429/503 {s['designed_429_503']}; "
            f"p99 last/first minute {s['p99_last_over_first']}; RSS {s['rss_mb_after_minute_1']} → "
            f"{s['rss_mb_at_end']} MB ({s['rss_growth_pct']:+.2f}%).", "",
            "| minute | requests | p50 ms | p99 ms | 429/503 |", "|---|---|---|---|---|",
        ]
        for m in s["per_minute"]:
            lines.append(f"| {m['minute']} | {m['requests']} | {m['p50_ms']} | {m['p99_ms']} | {m['designed_429_503']} |")
        lines.append("")
    if "baddocs" in result:
        b = result["baddocs"]
        lines += [
            "## Bad documents", "",
            f"Exit status {b['exit_status']}; {b['documents_indexed']} good documents indexed; "
            f"{sum(b['warned'].values())}/{len(b['warned'])} bad files named in a warning; "
            f"{b['sidecar_warnings']} sidecar warnings; ran as {b['ran_as']}.", "",
        ]
    lines.append("Passed: " + ", ".join(f"{part} {'yes' if result[part]['passed'] else 'NO'}" for part in result["parts"]))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="schema,kill,soak,baddocs")
    parser.add_argument("--max-examples", type=int, default=150, help="Schemathesis examples per operation and phase")
    parser.add_argument("--kill-trials", type=int, default=10)
    parser.add_argument("--soak-s", type=int, default=300)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--embedders", default="e5-small,use-m3")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    started = time.perf_counter()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "parts": parts, "encoders": args.embedders,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count()},
    }
    os.environ["STRESS_EMBEDDERS"] = args.embedders  # read by tanya_env for every process started
    with tempfile.TemporaryDirectory(prefix="tanya-stress-") as tmp:
        work = Path(tmp)
        index_dir = work / "index"
        if {"schema", "soak"} & set(parts):
            built = index(CORPUS, index_dir)
            if built.returncode != 0:
                print(built.stderr, file=sys.stderr)
                return 1
        for part in parts:
            print(f"stress: {part}...", file=sys.stderr, flush=True)
            if part == "schema":
                result[part] = run_schema(work, index_dir, args.max_examples)
            elif part == "kill":
                result[part] = run_kill(work, args.kill_trials, args.seed)
            elif part == "soak":
                result[part] = run_soak(work, index_dir, args.soak_s, args.clients, args.seed)
            elif part == "baddocs":
                result[part] = run_baddocs(work)
            else:
                parser.error(f"unknown part {part!r}")
            print(f"stress: {part} {'passed' if result[part]['passed'] else 'FAILED'}", file=sys.stderr, flush=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stress.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (RESULTS / "stress.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0 if all(result[part]["passed"] for part in parts) else 1


if __name__ == "__main__":
    sys.exit(main())

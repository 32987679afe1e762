"""Chat-turn latency through the app vs directly through Rasa, memory, and warm start time.

    .venv/bin/python tests/bench/chat_latency.py [--turns 200]     (make bench)

Starts the real product (`make run`, warm: environments and model present),
measures the time to the first answered message, then p50/p95 of a turn via
POST /api/chat and via Rasa's own /webhooks/rest/webhook at 1 and 10
concurrent users, and the resident memory of both processes. Prints numbers;
asserts nothing (targets live in the notes, not in timed tests).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.appserver import free_port  # noqa: E402

MESSAGES = [
    "làm căn cước lần đầu cần giấy tờ gì",
    "kich hoat dinh danh muc 2 ntn",
    "đăng ký tạm trú ở đâu",
    "khai sinh cho con mất bao lâu",
    "xin chào",
    "thẻ cccd cũ còn dùng được không",
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


async def run_users(url: str, users: int, turns: int, body_for) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:

        async def user(index: int) -> None:
            for turn in range(turns // users):
                body = body_for(f"bench{users}x{index}", MESSAGES[turn % len(MESSAGES)])
                started = time.perf_counter()
                response = await client.post(url, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()

        await asyncio.gather(*(user(i) for i in range(users)))
    return latencies


def summary(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    port, rasa_port = free_port(), free_port()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    token = "bench-token"
    env = dict(os.environ, PORT=str(port), RASA_PORT=str(rasa_port), VAR_DIR=str(var_dir), RASA_TOKEN=token)
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    app = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                response = httpx.post(
                    f"{app}/api/chat", json={"user": "first", "text": "xin chào"}, timeout=5
                )
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > 600:
                raise SystemExit("product did not answer within 600 s")
            time.sleep(0.2)
        print(f"warm `make run` → first answered message: {time.monotonic() - started:.1f} s")

        rasa = f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook"
        for users in (1, 10):
            via_app = asyncio.run(
                run_users(f"{app}/api/chat", users, args.turns, lambda u, t: {"user": u, "text": t})
            )
            direct = asyncio.run(
                run_users(rasa, users, args.turns, lambda u, t: {"sender": f"direct:{u}", "message": t})
            )
            (a50, a95), (r50, r95) = summary(via_app), summary(direct)
            print(
                f"{users:>2} user(s), {args.turns} turns: app p50 {a50:.1f} ms p95 {a95:.1f} ms | "
                f"rasa p50 {r50:.1f} ms p95 {r95:.1f} ms | app/rasa p50 {a50 / r50:.2f}"
            )
        make_pid = process.pid
        for pid in children(make_pid):
            print(f"app process {pid}: {rss_mb(pid):.0f} MB resident")
            for rasa_pid in children(pid):
                print(f"rasa process {rasa_pid}: {rss_mb(rasa_pid):.0f} MB resident")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


if __name__ == "__main__":
    main()

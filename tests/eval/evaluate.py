"""Evaluate the NLU on the held-out set: topic and procedure accuracy per style.

Runs in the Rasa environment (.venv-rasa), loading a trained model in-process:
    .venv-rasa/bin/python tests/eval/evaluate.py [--model PATH] [--compare-default]
                                                 [--min-procedure 0.93 ...]
With --compare-default it also trains Rasa's default pipeline (the `rasa init`
config) on the same data and prints the same figures and the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

import yaml  # noqa: E402

from bot.knowledge.catalog import Catalog  # noqa: E402

HELDOUT = ROOT / "tests" / "data" / "heldout.yml"
DEFAULT_CONFIG = ROOT / "tests" / "eval" / "default_config.yml"
STYLES = ("diacritics", "no_diacritics", "teencode")


def predicted_topic(catalog: Catalog, parsed: dict) -> str:
    """The topic the assistant reports: the best real intent, even after a fallback."""
    intent = parsed.get("intent", {}).get("name")
    if intent == "nlu_fallback":
        ranking = [i for i in parsed.get("intent_ranking", []) if i["name"] != "nlu_fallback"]
        intent = ranking[0]["name"] if ranking else None
    aspects = [e["value"] for e in parsed.get("entities", []) if e.get("entity") == "aspect"]
    return catalog.topic(intent, aspects) or "out_of_scope"


async def parse_all(model: Path, texts: list[str]) -> tuple[list[dict], list[float]]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # not one debug line per parsed message

    agent = Agent.load(str(model))
    results, latencies = [], []
    for text in texts:
        started = time.perf_counter()
        results.append(await agent.parse_message(text))
        latencies.append((time.perf_counter() - started) * 1000)
    return results, latencies


def report(
    name: str, catalog: Catalog, items: list[dict], predictions: list[str], latencies: list[float]
) -> dict:
    def accuracy(pairs: list[tuple[str, str]]) -> float:
        return sum(a == b for a, b in pairs) / len(pairs) if pairs else float("nan")

    figures: dict[str, float] = {}
    print(f"\n=== {name}: {len(items)} held-out messages ===")
    print(f"{'style':<15}{'n':>5}{'topic acc':>12}{'procedure acc':>16}")
    for style in (*STYLES, "all"):
        chosen = [(i, p) for i, p in zip(items, predictions, strict=True) if style in ("all", i["style"])]
        topic = accuracy([(i["topic"], p) for i, p in chosen])
        procedure = accuracy([(catalog.procedure_of(i["topic"]), catalog.procedure_of(p)) for i, p in chosen])
        figures[f"topic_{style}"], figures[f"procedure_{style}"] = topic, procedure
        print(f"{style:<15}{len(chosen):>5}{topic:>12.1%}{procedure:>16.1%}")
    gold = [i["topic"] == "out_of_scope" for i in items]
    pred = [p == "out_of_scope" for p in predictions]
    tp = sum(g and p for g, p in zip(gold, pred, strict=True))
    figures["oos_precision"] = tp / sum(pred) if sum(pred) else 0.0
    figures["oos_recall"] = tp / sum(gold) if sum(gold) else 0.0
    print(f"out_of_scope precision {figures['oos_precision']:.1%}  recall {figures['oos_recall']:.1%}")
    confused = Counter(
        (i["topic"], p) for i, p in zip(items, predictions, strict=True) if i["topic"] != p
    ).most_common(10)
    print("most confused (expected → predicted):")
    for (expected, got), count in confused:
        print(f"  {count:>3}  {expected} → {got}")
    latencies = sorted(latencies)
    figures["p50_ms"] = statistics.median(latencies)
    figures["p95_ms"] = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"parse latency in-process: p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms")
    return figures


def train_default(data_hash: str) -> Path:
    """Train Rasa's default pipeline once per version of the training data."""
    out = ROOT / "models" / "eval"
    model = out / f"default-{data_hash}.tar.gz"
    if model.exists():
        return model
    from rasa.model_training import train_nlu

    logging.getLogger("rasa").setLevel(logging.WARNING)
    train_nlu(
        config=str(DEFAULT_CONFIG),
        nlu_data=str(ROOT / "nlu" / "data"),
        output=str(out),
        fixed_model_name=f"default-{data_hash}",
        domain=str(ROOT / "domain.yml"),
    )
    return model


def data_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in [*sorted((ROOT / "nlu" / "data").rglob("*.yml")), ROOT / "domain.yml", DEFAULT_CONFIG]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "ward.tar.gz")
    parser.add_argument("--compare-default", action="store_true")
    for name in (
        "procedure",
        "procedure-no-diacritics",
        "procedure-teencode",
        "topic",
        "oos-precision",
        "oos-recall",
    ):
        parser.add_argument(f"--min-{name}", type=float, default=0.0)
    args = parser.parse_args()

    if not args.model.exists():
        parser.error(f"no model at {args.model}: run `make model` first")
    catalog = Catalog.load(ROOT / "faq" / "topics.yml")
    items = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    texts = [i["text"] for i in items]
    parsed, latencies = asyncio.run(parse_all(args.model, texts))
    ours = report("our pipeline", catalog, items, [predicted_topic(catalog, p) for p in parsed], latencies)

    if args.compare_default:
        model = train_default(data_fingerprint())
        parsed, latencies = asyncio.run(parse_all(model, texts))
        base = report(
            "Rasa default pipeline", catalog, items, [predicted_topic(catalog, p) for p in parsed], latencies
        )
        print("\n=== difference (ours − default), percentage points ===")
        for key in (
            "topic_all",
            "procedure_all",
            "procedure_diacritics",
            "procedure_no_diacritics",
            "procedure_teencode",
        ):
            print(f"  {key:<26}{(ours[key] - base[key]) * 100:+6.1f}")

    floors = {
        "procedure_all": args.min_procedure,
        "procedure_no_diacritics": args.min_procedure_no_diacritics,
        "procedure_teencode": args.min_procedure_teencode,
        "topic_all": args.min_topic,
        "oos_precision": args.min_oos_precision,
        "oos_recall": args.min_oos_recall,
    }
    failed = [f"{k} {ours[k]:.1%} < {v:.1%}" for k, v in floors.items() if ours[k] < v]
    if failed:
        print("BELOW FLOOR: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

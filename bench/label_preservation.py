"""Do augmentation pipelines keep the label? For each real dataset (antifit/corpora.py): train a
reference classifier on many originals (plain fine-tuning of the packaged all-MiniLM-L6-v2 with
the Hugging Face Trainer), augment held-out originals with each pipeline, and count how often
the reference model still assigns a variant its record's label — among the records whose
original it classifies correctly, so its own errors do not count against the pipeline.

Reported per pipeline: label preservation (that share), the variants kept per record (filters
drop some), and the words changed (a variant identical to its original preserves its label
trivially and teaches nothing).

    .venv/bin/python bench/label_preservation.py --datasets fortunes wordnet
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from antifit.corpora import SOURCES, make_split  # noqa: E402
from augmenters import augment  # noqa: E402
from augmenters.spec import example_pipelines  # noqa: E402
from bench.peer import finetune  # noqa: E402
from trainer.evalset import predict_items  # noqa: E402
from trainer.model import Classifier, load_classifier  # noqa: E402


def with_similarity(spec: dict[str, Any], floor: float) -> dict[str, Any]:
    return {**spec, "filters": [*spec.get("filters", []), {"type": "similarity", "min": floor}]}


def pipelines() -> dict[str, dict[str, Any]]:
    examples = {name: spec.to_dict() for name, spec in example_pipelines().items()}
    chosen = {name: examples[name] for name in ("eda", "synonym", "backtranslation", "guarded")}
    for floor in (0.8, 0.85, 0.9):
        chosen[f"eda + similarity {floor}"] = with_similarity(examples["eda"], floor)
    chosen["backtranslation + similarity 0.85"] = with_similarity(examples["backtranslation"], 0.85)
    return chosen


def words_changed(original: str, variant: str) -> float:
    """1 - the similarity of the two word sequences (difflib's ratio): a deleted or moved word
    counts once, not as a shift of every word after it."""
    return 1.0 - SequenceMatcher(None, original.split(), variant.split()).ratio()


def predict(clf: Classifier, texts: list[str]) -> list[str]:
    items = [{"text": t, "label": clf.labels[0]} for t in texts]  # labels are not used
    logits, _ = predict_items(clf, items, 64)
    return [clf.labels[i] for i in logits.argmax(-1).tolist()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--train-per-class", type=int, default=100)
    parser.add_argument("--probe-per-class", type=int, default=50)
    parser.add_argument("--n-variants", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "label_preservation.json"
    )
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    for name in args.datasets:
        texts = SOURCES[name](args.cache)
        labels = sorted(texts, key=json.dumps)
        split = make_split(texts, 1000, args.train_per_class, 0, args.probe_per_class, 0.0)
        probe = split.of("test")
        with tempfile.TemporaryDirectory() as tmp:
            finetune(split.records, labels, "plain", Path(tmp), epochs=args.epochs)
            model = load_classifier(Path(tmp) / "model", labels)
            originals = predict(model, [r["text"] for r in probe])
            right = {r["id"] for r, p in zip(probe, originals, strict=True) if p == r["label"]}
            print(
                f"{name}: reference model {len(right) / len(probe):.3f} accurate on "
                f"{len(probe)} held-out originals",
                flush=True,
            )
            for pipeline, spec in pipelines().items():
                variants = list(augment(probe, spec, seed=0, n_variants=args.n_variants))
                by_id = {r["id"]: r for r in probe}
                predicted = predict(model, [v.text for v in variants])
                kept = [
                    p == v.label
                    for v, p in zip(variants, predicted, strict=True)
                    if v.record_id in right
                ]
                changed = [words_changed(by_id[v.record_id]["text"], v.text) for v in variants]
                row = {
                    "dataset": name,
                    "pipeline": pipeline,
                    "preservation": sum(kept) / len(kept) if kept else None,
                    "variants_per_record": len(variants) / len(probe),
                    "words_changed": sum(changed) / len(changed) if changed else 0.0,
                }
                results.append(row)
                preservation = "-" if row["preservation"] is None else f"{row['preservation']:.3f}"
                print(
                    f"  {pipeline:36s} preservation {preservation}  variants/record "
                    f"{row['variants_per_record']:.2f}  words changed {row['words_changed']:.2f}",
                    flush=True,
                )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

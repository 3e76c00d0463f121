"""Does antifit give a better model on data it never saw? Its presets against the peers users
would otherwise run — plain fine-tuning and the Hugging Face Trainer's standard recipe — on real
labelled data the project does not ship (antifit/corpora.py), few examples per class, several
seeds paired by split.

Per dataset and seed: draw a split (``--per-class`` training and ``--val-per-class``
validation examples per class, ``--test-per-class`` test examples), flip ``--noise`` of the
training labels, upload it to a real service on loopback, and train every arm on it:

- ``plain`` and ``hf``: the Trainer (bench/peer.py), in-process; ``setfit-lib``: SetFit itself
  (PyPI ``setfit``, installed by the ``bench`` extra), the peer of the ``setfit`` preset;
- a preset name (``basic``, ...): ``antifit train``'s loop with that preset; ``recommended``:
  the preset and settings ``antifit recommend`` gives for the split;
- ``NAME=PRESET:JSON``: a preset with regularization overrides, e.g.
  ``'ema=basic:{"averaging": {"enabled": true}}'``.

Every arm gets the same model (the packaged all-MiniLM-L6-v2), learning rate, epochs, batch
size and maximum length, and every saved model is scored by the same code on the test split:
accuracy, macro-F1, ECE of the model as saved and after temperature scaling fitted on the
validation split, the held-out gap (test minus training cross-entropy, training labels as
given), and the share of flipped training examples the model predicts with their flipped
label (memorised).

    .venv/bin/python bench/efficacy.py --datasets fortunes wordnet --seeds 5

``--train-seeds K`` trains every arm K times on each split, with different training seeds
(head initialisation, dropout, batch order; ``--first-run`` skips the first runs, to add runs
to an earlier measurement): two runs of the same recipe on the same split
differ by several points at 16 texts per class (docs/benchmarks.md), so paired differences
are reported with their spread and a 95% interval over every (split, training seed) pair.
``--summarise A.json B.json`` pairs the rows of runs made by separate processes (the same
splits and training seeds, e.g. one process per arm) and prints the same summary; it reads
``--out``'s files gzipped too (``bench/kept/``: runs the docs quote, logits included). An arm that
saves an ensemble also scores each member alone (``ARM[i]`` in the summary); with
``--keep-logits`` the summary adds ``ARM~val``, the two members mixed with the weight that
minimises the validation cross-entropy.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from antifit.corpora import SOURCES, Split, make_split  # noqa: E402
from app.local_server import running  # noqa: E402
from bench.peer import finetune, setfit_library  # noqa: E402
from trainer.calibration import fit_scaling, fit_temperature  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.ensemble import is_ensemble, member_paths  # noqa: E402
from trainer.evalset import predict_items  # noqa: E402
from trainer.loop import train  # noqa: E402
from trainer.metrics import Evaluation, evaluate  # noqa: E402
from trainer.model import load_classifier  # noqa: E402
from trainer.recommend import for_served_dataset  # noqa: E402
from trainer.service import Service  # noqa: E402

# the Trainer's two recipes, and SetFit itself (the ``bench`` extra: pip install -e '.[bench]')
LIBRARY_PEER = "setfit-lib"
PEERS = ("plain", "hf", LIBRARY_PEER)


def parse_arm(text: str) -> tuple[str, str, dict[str, Any]]:
    """``NAME=PRESET:JSON`` | ``PRESET`` | a peer -> (name, preset, overrides)."""
    name, _, rest = text.partition("=")
    if not rest:
        return name, name, {}
    preset, _, overrides = rest.partition(":")
    return name, preset, json.loads(overrides) if overrides else {}


def upload(base: str, records: list[dict[str, Any]], name: str) -> str:
    body = "".join(json.dumps(r) + "\n" for r in records)
    r = httpx.post(
        f"{base}/v1/datasets?id_field=id&split_field=split&name={name}", content=body, timeout=120
    )
    r.raise_for_status()
    return str(r.json()["id"])


Logits = Callable[[list[dict[str, Any]]], torch.Tensor]


def saved_model(model_dir: Path, labels: list[str], max_length: int) -> Logits:
    """A saved model's logits for records (how a user would load it: antifit's loader)."""
    clf = load_classifier(model_dir, labels)
    return lambda items: predict_items(clf, items, max_length)[0]


@torch.no_grad()
def score(
    logits_of: Logits, split: Split, labels: list[str], keep_logits: bool = False
) -> dict[str, Any]:
    """A model's logits on the held-out data, as every arm is scored; with ``keep_logits``
    the validation and test logits and labels too (to study ensembles of arms afterwards)."""
    index = {label: i for i, label in enumerate(labels)}

    def logits_and_labels(part: str) -> tuple[torch.Tensor, torch.Tensor]:
        items = split.of(part)
        return logits_of(items), torch.tensor([index[item["label"]] for item in items])

    train_logits, train_labels = logits_and_labels("train")
    val_logits, val_labels = logits_and_labels("validation")
    test_logits, test_labels = logits_and_labels("test")
    test, scaled, temperature = held_out(val_logits, val_labels, test_logits, test_labels)
    train = evaluate(train_logits, train_labels)
    predicted = train_logits.argmax(-1).tolist()
    items = split.of("train")
    flips = [
        labels[p] == item["label"]
        for p, item in zip(predicted, items, strict=True)
        if item["id"] in split.flipped
    ]
    result: dict[str, Any] = {
        "test_accuracy": test.accuracy,
        "test_macro_f1": test.macro_f1,
        "test_ece": test.ece,
        "test_calibration": test.calibration,
        "test_ece_scaled": scaled.ece,
        "temperature": temperature,
        "test_loss": test.loss,
        "train_loss": train.loss,
        "gap_loss": test.loss - train.loss,
        "memorised": sum(flips) / len(flips) if flips else None,
    }
    if keep_logits:
        result["logits"] = {
            part: {"logits": logits.round(decimals=4).tolist(), "labels": targets.tolist()}
            for part, logits, targets in (
                ("validation", val_logits, val_labels),
                ("test", test_logits, test_labels),
            )
        }
    return result


def held_out(
    val_logits: torch.Tensor,
    val_labels: torch.Tensor,
    test_logits: torch.Tensor,
    test_labels: torch.Tensor,
) -> tuple[Evaluation, Evaluation, float]:
    """The test split's scores as the logits stand and after a temperature fitted on the
    validation split, and that temperature."""
    temperature = fit_temperature(val_logits, val_labels)
    scaled = evaluate(test_logits / temperature, test_labels)
    return evaluate(test_logits, test_labels), scaled, temperature


def run_arm(
    preset: str,
    overrides: dict[str, Any],
    split: Split,
    labels: list[str],
    base: str,
    dataset: str,
    out: Path,
    args: argparse.Namespace,
    seed: int,
) -> dict[str, Any]:
    started = time.monotonic()
    if preset == LIBRARY_PEER:
        logits_of = setfit_library(
            split.records, labels, out, max_length=args.max_length, seed=seed
        )
        result = score(
            lambda items: logits_of([x["text"] for x in items]), split, labels, args.keep_logits
        )
        return {**result, "steps": None, "seconds": time.monotonic() - started}
    if preset in PEERS:
        result = finetune(
            split.records,
            labels,
            preset,  # type: ignore[arg-type]
            out,
            epochs=args.epochs,
            learning_rate=args.lr,
            batch_size=args.batch_size,
            max_length=args.max_length,
            seed=seed,
        )
        extra = {"steps": result["steps"], "best_step": result["best_checkpoint"]}
    else:
        settings: dict[str, Any] = {"preset": preset}
        if preset == "recommended":  # what antifit recommend says for this split
            rec = for_served_dataset(Service(base, None), dataset)
            settings = {**rec.config, "preset": rec.preset}
            overrides = {**settings.pop("regularization", {}), **overrides}
        config = TrainConfig.model_validate(
            {
                **settings,
                "service": base,
                "dataset": dataset,
                "output_dir": str(out),
                "regularization": overrides,
                "epochs": args.epochs,
                "learning_rate": args.lr,
                "batch_size": args.batch_size,
                "max_length": args.max_length,
                "n_variants": args.n_variants,
                "seed": seed,
            }
        )
        report = train(config, progress=False)
        extra = {
            "steps": report["steps"],
            "best_step": report["best"]["step"],
            "stop": report["stop_reason"],
        }
        if report.get("label_cleaning"):  # how many labels it found suspect, how many it left out
            cleaning = report["label_cleaning"]
            extra["label_cleaning"] = {k: v for k, v in cleaning.items() if k != "file"}
        if report.get("ensemble"):  # what each member scored on validation alone
            members = report["ensemble"]["member_val"]
            extra["member_val_accuracy"] = [m["val_accuracy"] for m in members]
    seconds = time.monotonic() - started
    scores = score(
        saved_model(out / "model", labels, args.max_length), split, labels, args.keep_logits
    )
    if is_ensemble(out / "model"):  # each member loaded alone, scored the same way
        extra["members"] = [
            score(saved_model(path, labels, args.max_length), split, labels, args.keep_logits)
            for path in member_paths(out / "model")
        ]
    return {**scores, **extra, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--train-seeds", type=int, default=1, help="training runs per arm and split"
    )
    parser.add_argument(
        "--first-run",
        type=int,
        default=0,
        help="number of the first training run (run K trains with the split's seed + 1000 K): "
        "adds runs to an earlier measurement without repeating its runs",
    )
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--val-per-class", type=int, default=16)
    parser.add_argument("--test-per-class", type=int, default=150)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.25])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--n-variants", type=int, default=2)
    parser.add_argument("--arms", nargs="+", default=["plain", "hf", "recommended"])
    parser.add_argument(
        "--keep-logits",
        action="store_true",
        help="store each arm's validation and test logits in the results (for ensembles)",
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "efficacy.json")
    parser.add_argument(
        "--summarise",
        type=Path,
        nargs="+",
        metavar="RESULTS",
        help="train nothing: pair the rows of these result files (runs of the same splits "
        "made by separate processes) and print the summary",
    )
    parser.add_argument(
        "--ensemble",
        nargs="+",
        default=[],
        metavar="A+B",
        help="with --summarise: also score the ensemble of these arms (each arm's probabilities "
        "temperature-scaled on validation, then averaged; needs runs made with --keep-logits); "
        "ARM@K is the arm's run K later (training seed + 1000 K)",
    )
    parser.add_argument(
        "--class-bias",
        action="store_true",
        help="with --summarise: also score every arm with kept logits as shipped with "
        "regularization.class_bias (``ARM+bias``: a temperature and a bias per class fitted on "
        "the validation logits; for ``ensemble``, what the preset ships with class_bias on)",
    )
    args = parser.parse_args()
    if args.summarise:
        merged = [r for path in args.summarise for r in saved_rows(path)]
        merged += [r for spec in args.ensemble for r in ensemble_rows(merged, spec.split("+"))]
        merged += member_rows(merged)
        if args.class_bias:
            merged += class_bias_rows(merged)
        summarise(merged, list(dict.fromkeys(r["arm"] for r in merged)))
        return

    arms = [parse_arm(a) for a in args.arms]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp) / "data") as (base, _):
        for name in args.datasets:
            texts = SOURCES[name](args.cache)
            labels = sorted(texts, key=json.dumps)  # the service's label order
            print(f"{name}: { ({c: len(t) for c, t in texts.items()}) }", flush=True)
            for noise in args.noise:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    split = make_split(
                        texts,
                        seed,
                        args.per_class,
                        args.val_per_class,
                        args.test_per_class,
                        noise,
                    )
                    dataset = upload(base, split.records, f"{name}-noise{noise}-seed{seed}")
                    for run in range(args.first_run, args.first_run + args.train_seeds):
                        for arm, preset, overrides in arms:
                            out = Path(tmp) / f"{name}-{noise}-{seed}-{run}-{arm}"
                            # run 0 trains with the split's seed, as before there were runs
                            train_seed = seed + RUN_SEED_STRIDE * run
                            result = run_arm(
                                preset,
                                overrides,
                                split,
                                labels,
                                base,
                                dataset,
                                out,
                                args,
                                train_seed,
                            )
                            row = {
                                "dataset": name,
                                "noise": noise,
                                "seed": seed,
                                "train_seed": train_seed,
                                "arm": arm,
                                **result,
                            }
                            rows.append(row)
                            print(line(row), flush=True)
                            args.out.parent.mkdir(parents=True, exist_ok=True)
                            args.out.write_text(
                                json.dumps(
                                    {"args": vars(args), "rows": rows}, default=str, indent=1
                                )
                            )
    summarise(rows, [a for a, _, _ in arms])


def saved_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file, as ``--out`` wrote it or gzipped (``bench/kept/*.json.gz``:
    the runs docs/benchmarks.md quotes, logits included, kept in the repository)."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    rows: list[dict[str, Any]] = json.loads(data)["rows"]
    return rows


RUN = ("dataset", "noise", "seed", "train_seed")  # what identifies a training run in the rows
RUN_SEED_STRIDE = 1000  # run K of a split trains with the split's seed + RUN_SEED_STRIDE * K


def member_run(run: tuple[Any, ...], member: str) -> tuple[Any, ...]:
    """The row key of ``member`` in ``run``: ``ARM`` is the arm's row of that run, ``ARM@K``
    its row of the run K later on the same split (training seed + 1000 K), so that runs of one
    arm with several training seeds can be members of one ensemble."""
    arm, _, later = member.partition("@")
    dataset, noise, seed, train_seed = run
    return (dataset, noise, seed, train_seed + RUN_SEED_STRIDE * int(later or 0), arm)


def kept(row: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A row's kept logits and labels (``--keep-logits``), per part: validation and test."""
    parts = {part: row["logits"][part] for part in ("validation", "test")}
    logits = {part: torch.tensor(k["logits"]) for part, k in parts.items()}
    return logits, {part: torch.tensor(k["labels"]) for part, k in parts.items()}


def ensemble_rows(rows: list[dict[str, Any]], members: list[str]) -> list[dict[str, Any]]:
    """Rows for the ensemble of ``members`` in every run where all of them kept their logits:
    the mean of their probabilities, each arm's temperature-scaled on the validation split."""
    by = {(*(r.get(k) for k in RUN), r["arm"]): r for r in rows}
    out = []
    for run in sorted({key[:4] for key in by}, key=str):
        found = [r for m in members if (r := by.get(member_run(run, m))) and "logits" in r]
        if len(found) < len(members):
            continue
        probs = {part: torch.zeros(()) for part in ("validation", "test")}
        for r in found:
            logits, labels = kept(r)
            temperature = fit_temperature(logits["validation"], labels["validation"])
            for part in probs:
                probs[part] = probs[part] + (logits[part] / temperature).softmax(-1) / len(found)
        labels = kept(found[0])[1]
        keys = dict(zip(RUN, run, strict=True))
        out.append(
            mixed_row(
                keys, "+".join(members), probs["validation"].log(), probs["test"].log(), labels
            )
        )
    return out


def mixed_row(
    run: dict[str, Any],
    arm: str,
    val_log_probs: torch.Tensor,
    test_log_probs: torch.Tensor,
    labels: dict[str, torch.Tensor],
) -> dict[str, Any]:
    """The summary row of probabilities mixed from kept logits (no training texts: no gap, no
    memorised flips)."""
    test, scaled, _ = held_out(val_log_probs, labels["validation"], test_log_probs, labels["test"])
    return {
        **run,
        "arm": arm,
        "test_accuracy": test.accuracy,
        "test_macro_f1": test.macro_f1,
        "test_ece": test.ece,
        "test_ece_scaled": scaled.ece,
        "gap_loss": None,
        "memorised": None,
    }


def class_bias_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``ARM+bias`` for every row with kept logits: its logits after a temperature and a bias
    per class fitted on its validation logits (``trainer.calibration.fit_scaling``)."""
    out = []
    for r in rows:
        if "logits" not in r:
            continue
        logits, labels = kept(r)
        scaling = fit_scaling(logits["validation"], labels["validation"], class_bias=True)
        run = {k: r.get(k) for k in RUN}
        val, test = scaling(logits["validation"]), scaling(logits["test"])
        out.append(mixed_row(run, f"{r['arm']}+bias", val, test, labels))
    return out


def mixture(probs: list[torch.Tensor], w: float) -> torch.Tensor:
    """The log of ``w`` times the first member's probabilities plus 1 - w times the second's."""
    return (w * probs[0] + (1 - w) * probs[1]).clamp_min(1e-12).log()


def member_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every ensemble row that scored its members: each member alone (``ARM[i]``) and, with
    kept logits, ``ARM~val``: the mixture of the members' probabilities whose weight (0 to 1
    by 0.05) minimises the validation cross-entropy — what a validation-weighted ensemble
    would have shipped."""
    out = []
    for r in rows:
        members = r.get("members") or []
        run = {k: r.get(k) for k in RUN}
        for i, m in enumerate(members):
            out.append({**run, **m, "arm": f"{r['arm']}[{i}]"})
        if len(members) != 2 or not all("logits" in m for m in members):
            continue
        scored = [kept(m) for m in members]
        probs = {part: [logits[part].softmax(-1) for logits, _ in scored] for part in scored[0][0]}
        labels = scored[0][1]
        weights = [k / 20 for k in range(21)]
        losses = [
            evaluate(mixture(probs["validation"], w), labels["validation"]).loss for w in weights
        ]
        # the lowest loss; on a tie, the weight nearest the plain average
        _, w = min(zip(losses, weights, strict=True), key=lambda lw: (lw[0], abs(lw[1] - 0.5)))
        val, test = mixture(probs["validation"], w), mixture(probs["test"], w)
        out.append({**mixed_row(run, f"{r['arm']}~val", val, test, labels), "weight": w})
    return out


def line(r: dict[str, Any]) -> str:
    memorised = "-" if r["memorised"] is None else f"{r['memorised']:.2f}"
    return (
        f"{r['dataset']:9s} noise {r['noise']:.2f} seed {r['seed']}"
        f"/{r.get('train_seed', r['seed'])} {r['arm']:14s} "
        f"acc {r['test_accuracy']:.3f} f1 {r['test_macro_f1']:.3f} "
        f"ece {r['test_ece']:.3f} ({r['test_calibration']}) scaled {r['test_ece_scaled']:.3f} "
        f"gap {r['gap_loss']:.3f} memorised {memorised} steps {r['steps']} {r['seconds']:.0f}s"
    )


def summarise(rows: list[dict[str, Any]], arms: list[str]) -> None:
    keys = ("test_accuracy", "test_macro_f1", "test_ece", "test_ece_scaled", "gap_loss")
    conditions = sorted({(r["dataset"], r["noise"]) for r in rows})
    for dataset, noise in conditions:
        subset = [r for r in rows if (r["dataset"], r["noise"]) == (dataset, noise)]
        # a run: (split seed, training seed); old result files have one run per split
        by = {((r["seed"], r.get("train_seed", r["seed"])), r["arm"]): r for r in subset}
        seeds = sorted({run for run, _ in by})
        splits = len({run[0] for run in seeds})
        print(f"\n{dataset}, noise {noise}: mean over {len(seeds)} runs ({splits} splits)")
        header = "".join(f"{k:>17s}" for k in (*keys, "memorised"))
        print(f"{'arm':14s}{header}")
        for arm in arms:
            cells = []
            for k in (*keys, "memorised"):
                values = [by[(s, arm)][k] for s in seeds if (s, arm) in by]
                values = [v for v in values if v is not None]
                cells.append(f"{statistics.mean(values):.3f}" if values else "-")
            print(f"{arm:14s}" + "".join(f"{c:>17s}" for c in cells))
        for peer in PEERS:
            if peer not in arms:
                continue
            for arm in arms:
                if arm in PEERS:
                    continue
                paired = [s for s in seeds if (s, arm) in by and (s, peer) in by]
                if not paired:
                    continue
                diffs = [
                    100 * (by[(s, arm)]["test_accuracy"] - by[(s, peer)]["test_accuracy"])
                    for s in paired
                ]
                ece = [by[(s, arm)]["test_ece"] - by[(s, peer)]["test_ece"] for s in paired]
                spread = statistics.stdev(diffs) if len(diffs) > 1 else float("nan")
                half = 1.96 * spread / len(diffs) ** 0.5
                print(
                    f"  {arm} vs {peer}: accuracy {statistics.mean(diffs):+.1f} points on "
                    f"average (95% interval {statistics.mean(diffs) - half:+.1f} to "
                    f"{statistics.mean(diffs) + half:+.1f}; sd {spread:.1f}; worst run "
                    f"{min(diffs):+.1f}, better in {sum(d > 0 for d in diffs)}/{len(paired)}); "
                    f"ECE {statistics.mean(ece):+.3f}"
                )
                per_run = dict(zip(paired, diffs, strict=True))
                per_split = [statistics.mean(d) for d in by_split(per_run).values()]
                if len(per_split) < len(paired):
                    print(
                        f"    per split, its runs averaged: worst {min(per_split):+.1f}, "
                        f"better on {sum(d > 0 for d in per_split)}/{len(per_split)}"
                    )
            print_rerun(peer, {s: by[(s, peer)]["test_accuracy"] for s in seeds if (s, peer) in by})


def by_split(per_run: dict[tuple[int, int], float]) -> dict[int, list[float]]:
    """Each split's values in the order of its runs (keys: split seed, training seed)."""
    splits: dict[int, list[float]] = {}
    for (split, _), value in sorted(per_run.items()):
        splits.setdefault(split, []).append(value)
    return splits


def print_rerun(peer: str, accuracy: dict[tuple[int, int], float]) -> None:
    """The noise floor of the per-split comparison: each later run of ``peer`` on a split
    against its first run there (same recipe, split and test set; only the training seed
    differs)."""
    runs = by_split(accuracy).values()
    later = [100 * (value - values[0]) for values in runs for value in values[1:]]
    if later:
        print(
            f"  {peer} again vs its first run on the split: {statistics.mean(later):+.1f} points "
            f"on average, worst {min(later):+.1f}, more than a point below in "
            f"{sum(d < -1 for d in later)}/{len(later)}"
        )


if __name__ == "__main__":
    main()

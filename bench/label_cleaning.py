"""Does label cleaning find the wrong labels, and does its validation check refuse on clean
data? The verdict a training run with ``regularization.label_cleaning`` reaches before it
trains (trainer/label_check.py: the same service, records, seed and encoder), on splits of the
efficacy benchmark (bench/efficacy.py), scored against the labels the split flipped —
``antifit labels``'s code, no training, so many fresh splits cost minutes.

Per split: the suspects, how many of them are flipped labels (precision) and how many flipped
labels they catch (recall), the validation check's z and whether the cleaning applies; per
condition (dataset and noise): the splits where it applies and the training labels still wrong
after it (the flips it missed among the texts that keep their label).

The peer: cleanlab's ``find_label_issues`` (``pip install '.[bench]'``) on the same out-of-fold
probabilities, with its default filter (``prune_by_noise_rate``: as many issues as the
confident joint estimates, the largest margins first) and ``both`` (that and
``prune_by_class``); its precision and recall are scored against the same flips.

``--check-variants`` also scores two other validation checks on the same two probes (the
validation check is wrapped, not changed): the cross-entropy after each probe's own temperature
(fitted on validation: does leaving the suspects out make the probe better at telling the
classes apart, or only more confident?) and the error rate, each as a z of the per-text
difference, counted as applied above the same ``min_z``.

    .venv/bin/python bench/label_cleaning.py --first-seed 50 --seeds 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable, Container
from pathlib import Path
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from antifit.corpora import SOURCES, Split, make_split  # noqa: E402
from app.local_server import running  # noqa: E402
from bench.efficacy import RUN_SEED_STRIDE, upload  # noqa: E402
from trainer.calibration import fit_temperature  # noqa: E402
from trainer.config import LabelCleaning, TrainConfig  # noqa: E402
from trainer.label_check import LabelVerdict, checked_records, served_verdict  # noqa: E402
from trainer.regularizers import label_cleaning  # noqa: E402
from trainer.service import Service  # noqa: E402

PEER_FILTERS = ("prune_by_noise_rate", "both")
CHECK_VARIANTS = ("calibrated", "error")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=50)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--val-per-class", type=int, default=16)
    parser.add_argument(
        "--test-per-class", type=int, default=150, help="drawn as the efficacy benchmark does"
    )
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.25])
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument(
        "--train-seeds",
        type=int,
        default=1,
        help="verdicts per split, with the training seeds of runs 0..N-1 as bench/efficacy.py "
        "draws them (the split's seed + 1000 K): how much the verdict depends on the seed",
    )
    parser.add_argument(
        "--settings",
        type=json.loads,
        default={},
        help="label_cleaning settings as JSON, e.g. '{\"min_z\": 3}' (default: as shipped)",
    )
    parser.add_argument(
        "--check-variants",
        action="store_true",
        help="also score the temperature-scaled and error-rate validation checks",
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "labels.json")
    args = parser.parse_args()
    settings = LabelCleaning.model_validate({**args.settings, "enabled": True})
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp) / "data") as (base, _):
        for name in args.datasets:
            texts = SOURCES[name](args.cache)
            for noise in args.noise:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    split = make_split(
                        texts, seed, args.per_class, args.val_per_class, args.test_per_class, noise
                    )
                    dataset = upload(base, split.records, f"{name}-noise{noise}-seed{seed}")
                    for run in range(args.train_seeds):
                        train_seed = seed + RUN_SEED_STRIDE * run
                        row = verdict_row(base, dataset, split, train_seed, settings, args)
                        row.update(dataset=name, noise=noise, seed=seed)
                        rows.append(row)
                        print(line(row), flush=True)
                        args.out.parent.mkdir(parents=True, exist_ok=True)
                        args.out.write_text(
                            json.dumps({"args": vars(args), "rows": rows}, default=str, indent=1)
                        )
    summarise(rows)
    if args.train_seeds > 1:
        summarise_stability(rows)
    if args.check_variants:
        summarise_variants(rows, settings.min_z)


def verdict_row(
    base: str,
    dataset: str,
    split: Split,
    train_seed: int,
    settings: LabelCleaning,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The verdict a run training with ``train_seed`` reaches on the uploaded split, scored."""
    config = TrainConfig.model_validate(
        {
            "service": base,
            "dataset": dataset,
            "seed": train_seed,
            "max_length": args.max_length,
            "regularization": {"label_cleaning": settings.model_dump()},
        }
    )
    variants: dict[str, float] = {}
    if args.check_variants:
        with mock.patch("trainer.label_check.validation_check", recording(variants)):
            verdict = served_verdict(config)
    else:
        verdict = served_verdict(config)
    ids = [str(r["id"]) for r in checked_records(Service(base), config)]
    suspects = sorted(str(r["id"]) for r in verdict.rows)
    return {
        "train_seed": train_seed,
        "texts": verdict.checked,
        "flipped": len(split.flipped),
        "suspects": len(verdict.rows),
        "suspect_ids": suspects,
        "caught": sum(i in split.flipped for i in suspects),
        "z": verdict.check.z if verdict.check else None,
        "applied": verdict.applied,
        "cleanlab": cleanlab_issues(verdict, ids, split.flipped),
        "check_variants": variants,
    }


def summarise_stability(rows: list[dict[str, Any]]) -> None:
    """Per condition: on how many splits every training seed reached the same verdict, and how
    alike the suspects of two seeds on one split are (their Jaccard overlap, on average)."""
    print("\ncondition            same verdict on every seed  suspects' overlap between seeds")
    for condition in dict.fromkeys((r["dataset"], r["noise"]) for r in rows):
        mine = [r for r in rows if (r["dataset"], r["noise"]) == condition]
        splits = [
            [r for r in mine if r["seed"] == seed]
            for seed in dict.fromkeys(r["seed"] for r in mine)
        ]
        same = sum(len({r["applied"] for r in runs}) == 1 for runs in splits)
        overlaps = [
            jaccard(a["suspect_ids"], b["suspect_ids"])
            for runs in splits
            for k, a in enumerate(runs)
            for b in runs[k + 1 :]
        ]
        overlap = f"{statistics.mean(overlaps):.2f}" if overlaps else "-"
        print(
            f"{condition[0]:<9} {condition[1]:.2f}     {same:>2}/{len(splits):<2}{'':>23}{overlap}"
        )


def jaccard(a: list[str], b: list[str]) -> float:
    """Shared suspects over all suspects of the two (1 when neither names any)."""
    union = set(a) | set(b)
    return len(set(a) & set(b)) / len(union) if union else 1.0


def recording(variants: dict[str, float]) -> Any:
    """``validation_check`` (same arguments, same result), also writing the other checks' z
    of the same two probes into ``variants``."""

    def check(*args: Any) -> label_cleaning.ValidationCheck:
        x, y, suspect, x_val, y_val, n_classes, l2 = args
        every, without = label_cleaning.validation_logits(x, y, suspect, x_val, n_classes, l2)

        def losses(logits: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, y_val, reduction="none")

        def z(score: Callable[[torch.Tensor], torch.Tensor]) -> float:
            return label_cleaning.ValidationCheck.of(score(every), score(without)).z

        variants["calibrated"] = z(lambda logits: losses(logits / fit_temperature(logits, y_val)))
        variants["error"] = z(lambda logits: (logits.argmax(-1) != y_val).float())
        return label_cleaning.ValidationCheck.of(losses(every), losses(without))

    return check


def summarise_variants(rows: list[dict[str, Any]], min_z: float) -> None:
    """Per condition and check: the splits where it applies, and its suspects' precision
    there."""
    print("\ncondition            check        applied  precision where applied")
    for condition in dict.fromkeys((r["dataset"], r["noise"]) for r in rows):
        mine = [r for r in rows if (r["dataset"], r["noise"]) == condition]
        for check in ("validation loss", *CHECK_VARIANTS):
            z = [
                r["z"] if check == "validation loss" else r["check_variants"].get(check)
                for r in mine
            ]
            done = [r for r, v in zip(mine, z, strict=True) if v is not None and v > min_z]
            suspects = sum(r["suspects"] for r in done)
            caught = sum(r["caught"] for r in done)
            precision = f"{caught / suspects:.2f}" if suspects else "-"
            print(
                f"{condition[0]:<9} {condition[1]:.2f}      {check:<15} "
                f"{len(done):>2}/{len(mine):<2}     {precision}"
            )


def cleanlab_issues(
    verdict: LabelVerdict, ids: list[str], flipped: Container[str]
) -> dict[str, dict[str, int]]:
    """Per cleanlab filter: how many label issues it names and how many are flips."""
    from cleanlab.filter import find_label_issues

    found = {}
    for filter_by in PEER_FILTERS:
        issues = find_label_issues(
            verdict.given.numpy(), verdict.probabilities.numpy(), filter_by=filter_by
        )
        named = [ids[i] for i in issues.nonzero()[0]]
        found[filter_by] = {"issues": len(named), "caught": sum(i in flipped for i in named)}
    return found


def line(row: dict[str, Any]) -> str:
    z = "-" if row["z"] is None else f"{row['z']:.1f}"
    peer = ", ".join(f"{name} {v['issues']}/{v['caught']}" for name, v in row["cleanlab"].items())
    return (
        f"{row['dataset']:<9} noise {row['noise']:.2f} split {row['seed']}/{row['train_seed']}: "
        f"{row['suspects']:>3} suspects, {row['caught']:>3} of {row['flipped']:>3} flips, "
        f"z {z:>5}, {'applied' if row['applied'] else 'kept every label'}; "
        f"cleanlab issues/flips: {peer}"
    )


def summarise(rows: list[dict[str, Any]]) -> None:
    """Per condition: where the cleaning applies, its precision and recall there, and the
    share of training labels still wrong afterwards against before."""
    print(
        "\ncondition            applied  suspects  precision  recall  wrong before -> after"
        "   z median (min..max)"
    )
    for condition in dict.fromkeys((r["dataset"], r["noise"]) for r in rows):
        mine = [r for r in rows if (r["dataset"], r["noise"]) == condition]
        done = [r for r in mine if r["applied"]]
        suspects = sum(r["suspects"] for r in done)
        caught = sum(r["caught"] for r in done)
        flipped = sum(r["flipped"] for r in done)
        texts = sum(r["texts"] for r in done)
        before = flipped / texts if texts else 0.0
        after = (flipped - caught) / (texts - suspects) if texts > suspects else 0.0
        zs = [r["z"] for r in mine if r["z"] is not None]
        z = f"{statistics.median(zs):.1f} ({min(zs):.1f}..{max(zs):.1f})" if zs else "-"
        print(
            f"{condition[0]:<9} {condition[1]:.2f}     {len(done):>2}/{len(mine):<2}  "
            f"{suspects / max(len(done), 1):>8.1f}  {caught / suspects if suspects else 0:>9.2f}"
            f"  {caught / flipped if flipped else 0:>6.2f}  {before:>12.2f} -> {after:.2f}"
            f"   {z}"
        )
    print(
        "\nsuspects named on every split, before the check: per split, precision, recall"
        "\ncondition            antifit               "
        + "".join(f"cleanlab {name:<22}" for name in PEER_FILTERS)
    )
    for condition in dict.fromkeys((r["dataset"], r["noise"]) for r in rows):
        mine = [r for r in rows if (r["dataset"], r["noise"]) == condition]
        flipped = sum(r["flipped"] for r in mine)
        named = [(sum(r["suspects"] for r in mine), sum(r["caught"] for r in mine))]
        for name in PEER_FILTERS:
            found = [r["cleanlab"][name] for r in mine]
            named.append((sum(f["issues"] for f in found), sum(f["caught"] for f in found)))
        cells = "".join(
            f"{n / len(mine):>5.1f}  {c / n if n else 0:.2f}  {c / flipped if flipped else 0:.2f}"
            + " " * 13
            for n, c in named
        )
        print(f"{condition[0]:<9} {condition[1]:.2f}     {cells}")


if __name__ == "__main__":
    main()

"""Whole-run wall time of ``antifit train`` against the Hugging Face Trainer on the same data,
model, epochs and evaluation schedule (one evaluation per epoch), each run in a process of its
own (interpreter start, imports, model loading, training, evaluations, saving: what a user
waits for).

Pairs: ``antifit train --preset none`` vs the Trainer's plain fine-tuning, as it is and told to
evaluate the training texts too (``eval_dataset`` with both sets: the work antifit's default
train/validation gap does at every evaluation); ``none`` without that evaluation
(``train_eval_size=0``) vs the plain Trainer; ``basic`` vs the
Trainer's regularized recipe (both keep the best epoch: a checkpoint per epoch for the Trainer,
weights in memory for antifit), and each other preset vs plain fine-tuning, its extra cost
to be read against its step cost (bench/train_step.py) and the examples it trains on. Arms
alternate within each round; a ratio is the median over rounds of (arm / peer) in that round.
The augmented presets train on an augmentation job made before the timing starts (a user's
``--job``). The presets' ``min_steps`` is set to 0 here so that every arm gets the same epochs;
what it adds on small data is more steps, priced by the s/step column.

    .venv/bin/python bench/train_e2e.py --rounds 3 --epochs 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from antifit.corpora import fortunes, make_split  # noqa: E402
from app.local_server import running  # noqa: E402
from bench.efficacy import upload  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.service import Service  # noqa: E402

# arm -> the peers it is compared with
PAIRS = {
    "antifit none": ["HF plain", "HF plain, gap"],
    "antifit none, no gap": ["HF plain"],
    "antifit basic": ["HF recipe"],
    "antifit enhanced": ["HF plain"],
    "antifit advanced": ["HF plain"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--presets", nargs="+", default=["none", "basic", "enhanced"])
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / ".cache")
    args = parser.parse_args()

    split = make_split(fortunes(args.cache), 0, args.per_class, args.per_class, 0, 0.0)
    python = sys.executable
    times: dict[str, list[float]] = {}
    steps: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp) / "data") as (base, _):
        data = Path(tmp) / "records.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in split.records))
        dataset = upload(base, split.records, "e2e")
        service = Service(base)
        common = ["--epochs", str(args.epochs), "--max-length", "64", "--batch-size", "16"]
        peer = [python, "bench/peer.py", "--data", str(data), "--recipe"]
        commands: dict[str, list[str]] = {
            "HF plain": [*peer, "plain"],
            "HF plain, gap": [*peer, "plain", "--evaluate-training"],
            "HF recipe": [*peer, "hf"],
        }
        for preset in args.presets:
            config = TrainConfig.model_validate({"dataset": dataset, "preset": preset})
            job = []
            if config.regularization.augmented:  # made before the timing
                made = service.ensure_job(dataset, None, config.seed, config.n_variants)
                job = ["--job", made]
            commands[f"antifit {preset}"] = [
                python,
                "-m",
                "antifit.cli",
                "train",
                "--service",
                base,
                "--dataset",
                dataset,
                "--preset",
                preset,
                "--learning-rate",
                "1e-4",
                "--no-progress",
                "--restart",
                "--set",
                "regularization.min_steps=0",
                *job,
            ]
        if "antifit none" in commands:  # the loop alone, without the gap's evaluation
            commands["antifit none, no gap"] = [
                *commands["antifit none"],
                "--set",
                "train_eval_size=0",
            ]
        for round_ in range(args.rounds):
            for arm, command in commands.items():
                out = Path(tmp) / f"{arm.replace(' ', '-')}-{round_}"
                flags = ["--out" if arm.startswith("HF") else "--output-dir", str(out)]
                started = time.monotonic()
                done = subprocess.run(
                    [*command, *common, *flags], cwd=ROOT, capture_output=True, text=True
                )
                seconds = time.monotonic() - started
                if done.returncode != 0:
                    raise SystemExit(f"{arm} failed:\n{done.stderr[-3000:]}")
                times.setdefault(arm, []).append(seconds)
                steps[arm] = _steps(arm, out, done.stdout)
                print(f"round {round_} {arm:22s} {seconds:6.1f} s", flush=True)

    print(
        f"\n{args.epochs} epochs, {len(split.of('train'))} training texts, "
        f"{len(split.of('validation'))} validation texts, an evaluation per epoch; "
        f"median of {args.rounds} rounds"
    )
    print(f"{'arm':22s}{'median s':>10s}{'steps':>7s}{'s/step':>8s}  vs peer (range)")
    for arm, values in times.items():
        median = statistics.median(values)
        cells = []
        for peer in PAIRS.get(arm, []):
            ratios = [a / b for a, b in zip(values, times[peer], strict=True)]
            cells.append(
                f"{statistics.median(ratios):.2f}x {peer} ({min(ratios):.2f}-{max(ratios):.2f}x)"
            )
        line = f"{arm:22s}{median:10.1f}{steps[arm]:7d}{median / steps[arm]:8.2f}"
        print(f"{line}  {'; '.join(cells)}")


def _steps(arm: str, out: Path, stdout: str) -> int:
    if arm.startswith("HF"):
        return int(json.loads(stdout.strip().splitlines()[-1])["steps"])
    return int(json.loads((out / "report.json").read_text())["steps"])


if __name__ == "__main__":
    main()

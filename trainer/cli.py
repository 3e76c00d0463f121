"""``antifit train`` (a run, from a config file, the environment and flags), ``antifit sweep``
(candidate configurations side by side), ``antifit recommend`` (a regularization preset for
a dataset or a scenario, and why), ``antifit labels`` (the training labels that look wrong)
and ``antifit predict`` (``trainer.predict``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from trainer import predict
from trainer.config import TrainConfig
from trainer.recommend import Scenario, for_scenario, for_served_dataset

ENV_PREFIX = "ANTIFIT_TRAIN_"
# flag -> config field, for the flags that set one field each
FLAGS = {
    "service": str,
    "api_key": str,
    "dataset": str,
    "task": str,
    "job": str,
    "model": str,
    "output_dir": str,
    "preset": str,
    "auxiliary_dataset": str,
    "epochs": int,
    "max_steps": int,
    "learning_rate": float,
    "batch_size": int,
    "grad_accum": int,
    "max_length": int,
    "eval_every": int,
    "checkpoint_minutes": float,
    "seed": int,
    "device": str,
}


LAYERS = (
    "Settings come from --config (JSON or TOML), then ANTIFIT_TRAIN_<FIELD> environment "
    "variables, then flags, then --set; later ones win."
)


def add_config_arguments(t: argparse.ArgumentParser) -> None:
    """The flags that build a TrainConfig (train and sweep share them)."""
    t.add_argument("--config", type=Path, help="a JSON or TOML file of TrainConfig fields")
    for name, kind in FLAGS.items():
        aliases = ["--version"] if name == "job" else []  # an augmented version is a job
        field = TrainConfig.model_fields[name]
        default = (
            "" if field.default is None or field.is_required() else f" (default: {field.default})"
        )
        t.add_argument(
            f"--{name.replace('_', '-')}",
            *aliases,
            dest=name,
            type=kind,
            help=f"{field.description or name.replace('_', ' ')}{default}",
        )
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="any field by dotted path, e.g. regularization.mixout.p=0.2 (VALUE as JSON, "
        "else a string)",
    )
    t.add_argument(
        "--lora",
        action="store_true",
        default=None,
        help="train LoRA adapters (peft) instead of every weight: lora.enabled=true (rank, "
        "alpha, dropout, target_modules, merge under --set lora.*)",
    )
    t.add_argument(
        "--no-register",
        dest="register_run",
        action="store_false",
        default=None,
        help="do not register the run with the service (its console's Runs page): "
        "register_run=false",
    )
    t.add_argument("--print-config", action="store_true", help="print the config and exit")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser(
        "train",
        help="fine-tune a classifier, or a causal LM on prompts and responses (--task "
        "generation), on a dataset streamed from the service",
        description=LAYERS,
    )
    add_config_arguments(t)
    t.add_argument("--restart", action="store_true", help="discard a checkpoint in output-dir")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(run=run_train)

    w = sub.add_parser(
        "sweep",
        help="train candidate configurations on the same data and compare them",
        description="Each --candidate NAME=PRESET[:REGULARIZATION-JSON] (or a preset name) on "
        "top of the common settings; each trains into OUTPUT_DIR/NAME, then a table and the "
        f"overlaid validation curves (OUTPUT_DIR/sweep.json, sweep.png). {LAYERS}",
    )
    add_config_arguments(w)
    w.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="NAME=PRESET[:JSON]",
        help="a candidate (default: none, basic, enhanced)",
    )
    w.add_argument("--jobs", type=int, default=1, help="candidates trained at once (processes)")
    w.set_defaults(run=run_sweep)

    r = sub.add_parser(
        "recommend",
        help="suggest a regularization preset for a dataset (or a scenario), and why",
        description="With --dataset it reads the dataset's figures from the service (training "
        "size per class, class balance, validation size, text length, script); with "
        "--scenario it answers for a named situation.",
    )
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", help="a dataset id on the service")
    which.add_argument("--scenario", choices=get_args(Scenario))
    r.add_argument("--service", default=TrainConfig.model_fields["service"].default)
    r.add_argument("--api-key")
    r.add_argument("--auxiliary-dataset", help="general-domain dataset id (cross-domain)")
    r.add_argument("--model", help="the model directory to put in the suggested config")
    r.add_argument("--json", action="store_true", help="print the configuration as JSON only")
    r.set_defaults(run=run_recommend)

    lab = sub.add_parser(
        "labels",
        help="list the training labels that look wrong (label cleaning's verdict, no training)",
        description="What a run with regularization.label_cleaning finds before it trains, "
        "from the model's frozen encoder: each suspect as a JSON line (id, label, suggested "
        "class, both probabilities, text), and whether the validation check would leave them "
        "unlabelled. Its settings under --set regularization.label_cleaning.* (folds, l2, "
        f"max_share, validation_check, min_z, max_texts). {LAYERS}",
    )
    add_config_arguments(lab)
    lab.add_argument("--out", type=Path, help="write the suspects here (default: stdout)")
    lab.set_defaults(run=run_labels)

    predict.add_parser(sub)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data.setdefault(key, {})
        if not isinstance(data, dict):
            raise ValueError(f"--set {path}: {key!r} is not a section")
    data[last] = value


def gather(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, Any]:
    """The raw config: file, then environment, then flags, then --set."""
    data: dict[str, Any] = {}
    if args.config:
        text = args.config.read_text(encoding="utf-8")
        data = tomllib.loads(text) if args.config.suffix == ".toml" else json.loads(text)
    fields = set(TrainConfig.model_fields)
    for key, text in environ.items():
        # an empty variable is an unset one: compose passes ${X:-} as ""
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in fields and text:
            field = key[len(ENV_PREFIX) :].lower()
            # a text field keeps its text: an id of digits is not a number
            textual = TrainConfig.model_fields[field].annotation in (str, str | None)
            data[field] = text if textual else _value(text)
    for name in FLAGS:
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    if getattr(args, "lora", None):
        _set_path(data, "lora.enabled", True)
    if getattr(args, "register_run", None) is False:
        data["register_run"] = False
    for item in args.set:
        path, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected PATH=VALUE")
        _set_path(data, path, _value(text))
    return data


def _log(command: str) -> Any:
    def log(message: str) -> None:
        print(f"[antifit {command}] {message}", file=sys.stderr, flush=True)

    return log


def _quiet(message: str) -> None:
    del message


def _problems(exc: ValidationError) -> str:
    return "\n".join(
        f"  field '{'.'.join(str(p) for p in e['loc']) or '(root)'}': {e['msg']}"
        for e in exc.errors()
    )


def _invalid(command: str, exc: Exception) -> int:
    detail = _problems(exc) if isinstance(exc, ValidationError) else f"  {exc}"
    print(f"antifit {command}: invalid configuration:\n{detail}", file=sys.stderr)
    return 2


def run_train(args: argparse.Namespace) -> int:
    try:
        config = TrainConfig.model_validate(gather(args, dict(os.environ)))
    except (ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        return _invalid("train", exc)
    if args.print_config:
        print(config.model_dump_json(indent=2))
        return 0
    from trainer.loop import Interrupted, TrainingError, train
    from trainer.stream import ServiceError

    # under torchrun every rank trains; rank 0 alone reports (as the progress bar), errors
    # still come from any rank
    primary = int(os.environ.get("RANK", "0")) == 0
    log = _log("train") if primary else _quiet
    requested: list[int] = []  # the signal that asked the run to stop

    def request_stop(signum: int, frame: object) -> None:
        if requested:  # a second signal: stop now
            raise KeyboardInterrupt
        requested.append(signum)
        log(f"{signal.Signals(signum).name}: checkpointing after this step, then stopping")

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        report = train(
            config,
            progress=not args.no_progress,
            restart=args.restart,
            on_log=log,
            should_stop=lambda: bool(requested),
        )
    except Interrupted as exc:
        print(f"antifit train: {exc}", file=sys.stderr)
        return 128 + requested[0]
    except (TrainingError, ServiceError) as exc:
        print(f"antifit train: error: {exc}", file=sys.stderr)
        return 2
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not primary:
        return 0
    final = report["final"] or {}
    print(
        json.dumps(
            {
                "output_dir": config.output_dir,
                "stop_reason": report["stop_reason"],
                "best": report["best"],
                **{k: final.get(k) for k in ("val_accuracy", "val_ece", "gap_loss")},
            },
            indent=2,
        )
    )
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from trainer.sweep import candidate_configs, format_table, parse_candidate, run_sweep

    try:
        base = gather(args, dict(os.environ))
        TrainConfig.model_validate(base)
        candidates = dict(parse_candidate(c) for c in args.candidate or DEFAULT_CANDIDATES)
        output_dir = Path(base.get("output_dir") or "runs/sweep")
        configs = candidate_configs(base, candidates, output_dir)
    except (ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        return _invalid("sweep", exc)
    if args.print_config:
        print(json.dumps({n: c.model_dump(mode="json") for n, c in configs.items()}, indent=2))
        return 0
    from trainer.loop import TrainingError
    from trainer.stream import ServiceError

    try:
        result = run_sweep(configs, output_dir, args.jobs, on_log=_log("sweep"))
    except (TrainingError, ServiceError) as exc:
        print(f"antifit sweep: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    print(f"table: {output_dir / 'sweep.json'}, curves: {output_dir / 'sweep.png'}")
    return 0


DEFAULT_CANDIDATES = ("none", "basic", "enhanced")


def run_recommend(args: argparse.Namespace) -> int:
    if args.dataset:
        from trainer.service import Service
        from trainer.stream import ServiceError

        service = Service(args.service, args.api_key)
        try:
            rec = for_served_dataset(service, args.dataset, args.auxiliary_dataset)
        except ServiceError as exc:
            print(f"antifit recommend: error: {exc}", file=sys.stderr)
            return 2
    else:
        rec = for_scenario(args.scenario, args.auxiliary_dataset)
    config = rec.train_config(args.dataset or "DATASET", args.model)
    settings = {"preset": rec.preset, **rec.config}
    if args.json:
        print(
            json.dumps(
                {
                    "preset": rec.preset,
                    "settings": settings,
                    "reasons": rec.reasons,
                    "regularization": config.regularization.model_dump(),
                },
                indent=2,
            )
        )
        return 0
    print(f"preset: {rec.preset}\nwhy:")
    for reason in rec.reasons:
        print(f"  - {reason}")
    print("settings (a run config, or --set / flags):")
    print(json.dumps(settings, indent=2))
    return 0


def run_labels(args: argparse.Namespace) -> int:
    try:
        config = TrainConfig.model_validate(gather(args, dict(os.environ)))
        if config.task == "generation":
            raise ValueError("label cleaning checks a classifier's labels, not generation's")
    except (ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        return _invalid("labels", exc)
    if args.print_config:
        print(config.model_dump_json(indent=2))
        return 0
    from trainer.label_check import served_verdict
    from trainer.stream import ServiceError

    try:
        verdict = served_verdict(config)
    except (ServiceError, ValueError, OSError) as exc:
        print(f"antifit labels: error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        from trainer.report import write_jsonl

        write_jsonl(args.out, verdict.rows)
    else:
        sys.stdout.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in verdict.rows))
    log = _log("labels")
    log(verdict.sentence(str(args.out) if args.out else "listed above"))
    if verdict.check:
        check = verdict.check
        log(
            f"validation check: a probe's validation loss {check.every_label:.4f} with every "
            f"label, {check.without_suspects:.4f} without the suspects' (z {check.z:.1f}, "
            f"applied above {config.regularization.label_cleaning.min_z:g})"
        )
    return 0

"""The console's Runs pages: training runs registered by ``antifit train`` — their learning
curves with the early-stopping point, the reliability diagram, and several runs overlaid.

Charts are drawn in the browser by uPlot from the JSON each page embeds; the same numbers are
in a table on the page for readers without JavaScript (or without sight of a chart)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from app.api.deps import PrincipalDep, RunsDep, owned_run
from app.api.ids import RunId
from app.api.routes.runs import Run
from app.console.render import render

router = APIRouter(prefix="/ui/runs", include_in_schema=False)

MAX_OVERLAID = 8
CURVES = {  # chart -> the metrics it draws, in this order
    "Loss": ("train_loss", "val_loss", "val_calibrated_loss"),
    "Accuracy": ("train_accuracy", "val_accuracy", "val_macro_f1"),
    "Perplexity": ("train_perplexity", "val_perplexity"),
}


def latest_by_step(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row a step, the last logged: a resumed run logs again the steps after its
    checkpoint."""
    by_step: dict[int, dict[str, Any]] = {
        row["step"]: row for row in rows if isinstance(row.get("step"), int)
    }
    return [by_step[step] for step in sorted(by_step)]


def curve_charts(rows: list[dict[str, Any]], marker: int | None) -> list[dict[str, Any]]:
    steps = [row["step"] for row in rows]
    charts = []
    for title, metrics in CURVES.items():
        series = [
            {"label": m, "values": [row.get(m) for row in rows]}
            for m in metrics
            if any(isinstance(row.get(m), int | float) for row in rows)
        ]
        if series:
            charts.append(
                {"title": title, "x": steps, "xlabel": "step", "series": series, "marker": marker}
            )
    return charts


def reliability_chart(report: dict[str, Any] | None) -> dict[str, Any] | None:
    bins = [b for b in ((report or {}).get("calibration") or {}).get("bins", []) if b["count"]]
    if not bins:
        return None
    confidence = [round(b["confidence"], 4) for b in bins]
    return {
        "title": "Reliability (validation, the saved model)",
        "x": [0.0, *confidence, 1.0],
        "xlabel": "confidence",
        "series": [
            {"label": "accuracy", "values": [None, *(round(b["accuracy"], 4) for b in bins), None]},
            {"label": "perfect calibration", "values": [0.0, *confidence, 1.0]},
        ],
        "marker": None,
        "points": True,
        "range": [0.0, 1.0],
    }


def cleaning_sentence(report: dict[str, Any] | None) -> str | None:
    """What label cleaning did in a run, from its report's ``label_cleaning`` (None when it
    was off, or the report does not say in the shape ``antifit train`` writes)."""
    cleaning = (report or {}).get("label_cleaning")
    if not isinstance(cleaning, dict):
        return None
    counts = [cleaning.get(k) for k in ("suspects", "checked", "unlabelled")]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
        return None
    suspects, checked, unlabelled = counts
    said = f"{suspects} of {checked} training labels looked wrong to the probe; "
    said += f"{unlabelled} trained without their label" if unlabelled else "every label kept"
    check = cleaning.get("validation_check")
    z = check.get("z") if isinstance(check, dict) else None
    if isinstance(z, int | float) and not isinstance(z, bool):
        said += f" (validation check: z {z:.1f})"
    file = cleaning.get("file")
    if suspects and isinstance(file, str):
        said += f"; the run's output folder lists them in {file[:64]}"
    return said


@router.get("", response_class=HTMLResponse)
def runs_page(request: Request, runs: RunsDep, principal: PrincipalDep) -> HTMLResponse:
    rows = [Run.of(r) for r in runs.recent(100, principal.owner_filter())]
    return render(request, "runs.html", runs=rows)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    runs: RunsDep,
    principal: PrincipalDep,
    run_ids: Annotated[list[str], Query(alias="id", max_length=MAX_OVERLAID)] = [],  # noqa: B006
) -> HTMLResponse:
    chosen = [owned_run(runs, run_id[:64], principal) for run_id in run_ids]
    rows_of = {run.id: latest_by_step(runs.evaluations(run.id)) for run in chosen}
    steps = sorted({row["step"] for rows in rows_of.values() for row in rows})
    charts = []
    for metric in ("val_loss", "val_accuracy", "val_ece"):
        series = []
        for run in chosen:
            by_step = {row["step"]: row.get(metric) for row in rows_of[run.id]}
            series.append(
                {"label": f"{run.name} ({run.id[:8]})", "values": [by_step.get(s) for s in steps]}
            )
        if any(v is not None for s in series for v in s["values"]):
            charts.append(
                {"title": metric, "x": steps, "xlabel": "step", "series": series, "marker": None}
            )
    return render(request, "compare.html", runs=[Run.of(r) for r in chosen], charts=charts)


@router.get("/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, run_id: RunId, runs: RunsDep, principal: PrincipalDep
) -> HTMLResponse:
    run = Run.of(owned_run(runs, run_id, principal))
    rows = latest_by_step(runs.evaluations(run.id))
    report = run.report or {}
    best = report.get("best") or {}
    marker = best.get("step") if report.get("restored_best_weights") else None
    if marker is None and rows:
        marker = rows[-1].get("best_step")
    charts = curve_charts(rows, marker)
    reliability = reliability_chart(report)
    return render(
        request,
        "run.html",
        run=run,
        rows=rows,
        charts=charts + ([reliability] if reliability else []),
        best=best,
        cleaning=cleaning_sentence(report),
        marker=marker,
        columns=[
            c
            for c in ("step", "epoch", *CURVES["Loss"], *CURVES["Accuracy"], "val_ece")
            if any(c in row for row in rows)
        ],
    )

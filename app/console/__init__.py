"""The web console (/ui): look at datasets, try pipelines, follow jobs, compare training runs —
in the browser, with no build step and no CDN (htmx and uPlot are vendored under
static/vendor with their licences)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    from app.console import pages, runs  # jinja2 loads with the first console import
    from app.console.render import problem_page

    app.state.problem_page = problem_page
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(pages.router)
    app.include_router(runs.router)

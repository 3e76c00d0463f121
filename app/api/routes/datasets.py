"""/v1/datasets: upload, list, inspect, preview and delete datasets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from app.api.deps import MetricsDep, PrincipalDep, SettingsDep, StoreDep, owned_dataset
from app.api.ids import SEED_MAX, DatasetId
from app.api.openapi import V1, problems
from app.api.upload import receive, sniff_format
from app.core.problems import Problem, invalid, not_found
from app.core.tokens import MAX_TOKEN_CHARS
from app.storage.datasets import BadPageToken, DatasetStore, UnknownDataset
from app.storage.db import DatasetRow
from app.storage.ingest import UploadOptions, UploadRejected, parse_split_ratios
from app.storage.shards import Split

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=problems(*V1))


class Dataset(BaseModel):
    id: str
    name: str
    created_at: datetime
    rows: int
    shards: int
    format: str
    task: Literal["classification", "generation"] = "classification"
    fields: dict[str, str | None]
    splits: dict[str, int]
    labels: list[dict[str, Any]]
    text_length: dict[str, float]
    response_length: dict[str, float] | None = None
    skipped: int

    @classmethod
    def of(cls, row: DatasetRow) -> Dataset:
        return cls(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            rows=row.row_count,
            shards=row.shard_count,
            **row.summary,
        )


class Created(Dataset):
    skipped_rows: list[dict[str, Any]]


class DatasetPage(BaseModel):
    datasets: list[Dataset]
    next_page_token: str | None


class RecordPage(BaseModel):
    records: list[dict[str, Any]]
    next_page_token: str | None


@router.post("", status_code=201, response_model=Created, responses=problems(400))
async def create_dataset(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    metrics: MetricsDep,
    principal: PrincipalDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
    format: Literal["jsonl", "csv", "parquet"] | None = None,
    text_field: Annotated[str, Query(min_length=1, max_length=200)] = "text",
    label_field: Annotated[str, Query(min_length=1, max_length=200)] = "label",
    prompt_field: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="a generation dataset: the prompt's column (with response_field)",
        ),
    ] = None,
    response_field: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="the response's column (generation)"),
    ] = None,
    messages_field: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="a generation dataset of chats: the column of {role, content} messages, "
            "each conversation ending with a user message and the assistant's answer",
        ),
    ] = None,
    id_field: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    split_field: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    splits: Annotated[
        str | None,
        Query(max_length=200, description="split ratios, e.g. train:0.8,validation:0.1,test:0.1"),
    ] = None,
    split_seed: Annotated[int, Query(ge=0, le=SEED_MAX)] = 0,
    on_error: Literal["reject", "skip"] = "reject",
) -> Created:
    """Upload JSONL, CSV or Parquet as a multipart ``file`` or as the raw body: labelled texts
    (text_field, label_field), or a generation dataset (prompt_field and response_field, or
    messages_field), whose records' label is their target ``{"response", "context"?}``."""
    ratios = None
    if (prompt_field is None) != (response_field is None):
        missing = "response_field" if response_field is None else "prompt_field"
        raise invalid(missing, f"{missing} is needed too: a prompt goes with a response")
    if messages_field is not None and prompt_field is not None:
        raise invalid(
            "messages_field",
            "give either messages_field or prompt_field and response_field",
            message="conflicts with prompt_field",
        )
    if splits is not None:
        if split_field is not None:
            raise invalid(
                "splits",
                "give either split_field or splits, not both",
                message="conflicts with split_field",
            )
        try:
            ratios = parse_split_ratios(splits)
        except ValueError as exc:
            raise invalid("splits", f"splits: {exc}", message=str(exc)) from exc
    path, filename = await receive(request, settings.max_upload_bytes, store.tmp)
    try:
        fmt = format or sniff_format(path, filename, request.headers.get("content-type", ""))
        options = UploadOptions(
            format=fmt,  # type: ignore[arg-type]
            text_field=text_field,
            label_field=label_field,
            id_field=id_field,
            split_field=split_field,
            split_ratios=ratios,
            split_seed=split_seed,
            on_error=on_error,
            max_text_chars=settings.max_text_chars,
            prompt_field=prompt_field,
            response_field=response_field,
            messages_field=messages_field,
        )
        created = await run_in_threadpool(
            store.create, path, options, (name or filename or "dataset")[:200], principal.name
        )
    except UploadRejected as exc:
        metrics.uploads.labels("rejected").inc()
        first = exc.errors[0]
        where = f"line {first.line}" + (f", field {first.field!r}" if first.field else "")
        raise Problem(
            422,
            "invalid-upload",
            "Invalid upload",
            f"{exc.total} bad row(s); first at {where}: {first.message}; nothing was stored",
            errors=[e.to_dict() for e in exc.errors],
            bad_rows=exc.total,
        ) from exc
    finally:
        path.unlink(missing_ok=True)
    metrics.uploads.labels("created").inc()
    response.headers["Location"] = f"/v1/datasets/{created.dataset.id}"
    return Created(
        **Dataset.of(created.dataset).model_dump(),
        skipped_rows=[e.to_dict() for e in created.skipped],
    )


@router.get("", response_model=DatasetPage)
def list_datasets(
    settings: SettingsDep,
    store: StoreDep,
    principal: PrincipalDep,
    page_size: Annotated[int, Query(ge=1, le=SEED_MAX)] = 50,
    page_token: Annotated[str | None, Query(max_length=MAX_TOKEN_CHARS)] = None,
) -> DatasetPage:
    try:
        rows, token = store.page(
            min(page_size, settings.page_size_max), page_token, principal.owner_filter()
        )
    except BadPageToken as exc:
        raise _bad_token() from exc
    return DatasetPage(datasets=[Dataset.of(r) for r in rows], next_page_token=token)


@router.get("/{dataset_id}", response_model=Dataset, responses=problems(404))
def get_dataset(dataset_id: DatasetId, store: StoreDep, principal: PrincipalDep) -> Dataset:
    return Dataset.of(owned_dataset(store, dataset_id, principal))


@router.get("/{dataset_id}/records", response_model=RecordPage, responses=problems(404))
def list_records(
    dataset_id: DatasetId,
    settings: SettingsDep,
    store: StoreDep,
    principal: PrincipalDep,
    split: Split | None = None,
    page_size: Annotated[int, Query(ge=1, le=SEED_MAX)] = 100,
    page_token: Annotated[str | None, Query(max_length=MAX_TOKEN_CHARS)] = None,
) -> RecordPage:
    offset = _offset(store, page_token)
    size = min(page_size, settings.page_size_max)
    owned_dataset(store, dataset_id, principal)
    try:
        records = store.records(dataset_id, split=split, offset=offset, limit=size + 1)
    except UnknownDataset as exc:
        raise not_found("Dataset", dataset_id) from exc
    more = len(records) > size
    token = store.signer.encode({"offset": offset + size}) if more else None
    return RecordPage(records=[r.to_dict() for r in records[:size]], next_page_token=token)


@router.delete("/{dataset_id}", status_code=204, responses=problems(404))
def delete_dataset(dataset_id: DatasetId, store: StoreDep, principal: PrincipalDep) -> Response:
    owned_dataset(store, dataset_id, principal)
    try:
        store.delete(dataset_id)
    except UnknownDataset as exc:
        raise not_found("Dataset", dataset_id) from exc
    return Response(status_code=204)


def _offset(store: DatasetStore, token: str | None) -> int:
    if token is None:
        return 0
    try:
        offset = store.signer.decode(token)["offset"]
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(token)
        return offset
    except (ValueError, TypeError, KeyError) as exc:
        raise _bad_token() from exc


def _bad_token() -> Problem:
    return invalid(
        "page_token",
        "page_token is not one this server issued",
        message="invalid",
        slug="invalid-page-token",
        title="Invalid page token",
    )

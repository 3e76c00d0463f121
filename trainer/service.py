"""What the trainer asks the service besides the training stream: the dataset's labels and
splits, an augmentation job (started when augmented batches are wanted and none is given), and
the fixed evaluation sets (all validation originals; a seeded subset of the training ones)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from augmenters.spec import example_pipelines
from trainer.stream import Batch, ServiceError, StreamDataset

JOB_DONE = "succeeded"
# the trainer's own augmentation: the most label-preserving of the pipelines measured in
# docs/benchmarks.md (Apertium back-translation with a sentence-similarity floor of 0.85)
DEFAULT_PIPELINE = "label_preserving"
JOB_FAILED = ("failed", "cancelled")


def default_augmentation() -> dict[str, Any]:
    return example_pipelines()[DEFAULT_PIPELINE].to_dict()


class Service:
    def __init__(self, base: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.base = base.rstrip("/")
        self.api_key = api_key
        headers = {"X-API-Key": api_key} if api_key else {}
        self.client = httpx.Client(base_url=self.base, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceError(f"cannot reach the service at {self.base}: {exc}") from exc

    def _get(self, path: str) -> dict[str, Any]:
        response = self._request("GET", path)
        if response.status_code != 200:
            raise ServiceError(f"GET {path} answered {response.status_code}: {response.text}")
        body: dict[str, Any] = response.json()
        return body

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        return self._get(f"/v1/datasets/{dataset_id}")

    def job(self, job_id: str) -> dict[str, Any]:
        return self._get(f"/v1/jobs/{job_id}")

    @staticmethod
    def labels(summary: dict[str, Any], task: str = "classification") -> list[Any]:
        """A dataset's label values from its summary, in the service's order (sorted by their
        JSON text; none for generation); an error when it cannot be trained on."""
        dataset_id = summary["id"]
        kind = summary.get("task", "classification")
        if kind != task:
            how = (
                "upload it with prompt_field and response_field, or messages_field"
                if task == "generation"
                else "train it with --task generation"
            )
            raise ServiceError(f"dataset {dataset_id} is a {kind} dataset: {how}")
        labels = [entry["label"] for entry in summary["labels"]]
        if task == "classification" and (None in labels or len(labels) < 2):
            raise ServiceError(
                f"dataset {dataset_id} needs a label on every record and at least two labels; "
                f"it has {labels}"
            )
        if not summary["splits"].get("validation"):
            raise ServiceError(
                f"dataset {dataset_id} has no validation split: upload it with a split field "
                "or split ratios (e.g. ?splits=train:0.8,validation:0.2)"
            )
        return labels

    def ensure_job(
        self,
        dataset_id: str,
        spec: dict[str, Any] | None,
        seed: int,
        n_variants: int,
        target: str = "text",
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll: float = 1.0,
        retries: int = 2,
    ) -> str:
        """Start (or join: the idempotency key is the request's hash, so every rank and every
        resumed run gets the same job) an augmentation job over the training split and wait
        until it has succeeded. A failed job (a transient fault: a worker killed, a full disk)
        is retried ``retries`` times, resuming from its finished shards; a cancelled one is
        not (someone meant it)."""
        body = {
            "spec": spec if spec is not None else default_augmentation(),
            "seed": seed,
            "n_variants": n_variants,
            "splits": ["train"],
            # the default stays out of the body (and so of the idempotency key), as before
            **({"target": target} if target != "text" else {}),
        }
        key = hashlib.blake2b(
            json.dumps([dataset_id, body], sort_keys=True).encode(), digest_size=16
        ).hexdigest()
        response = self._request(
            "POST", f"/v1/datasets/{dataset_id}/jobs", json=body, headers={"Idempotency-Key": key}
        )
        if response.status_code not in (200, 202):
            raise ServiceError(f"the augmentation job was refused: {response.text}")
        job: dict[str, Any] = response.json()
        while job["state"] != JOB_DONE:
            if job["state"] == "failed" and retries > 0:
                retries -= 1
                retried = self._request("POST", f"/v1/jobs/{job['id']}/retry")
                if retried.status_code == 202:
                    job = retried.json()
                    continue
            if job["state"] in JOB_FAILED:
                raise ServiceError(f"augmentation job {job['id']} {job['state']}: {job['error']}")
            if on_progress:
                on_progress(job)
            time.sleep(poll)
            job = self.job(job["id"])
        return str(job["id"])

    def _post(self, path: str, body: dict[str, Any], expected: int) -> httpx.Response:
        response = self._request("POST", path, json=body)
        if response.status_code != expected:
            raise ServiceError(f"POST {path} answered {response.status_code}: {response.text}")
        return response

    def register_run(self, name: str, config: dict[str, Any], dataset: str, job: str | None) -> str:
        body = {"name": name, "config": config, "dataset": dataset, "job": job}
        return str(self._post("/v1/runs", body, 201).json()["id"])

    def run_state(self, run_id: str) -> str:
        return str(self._get(f"/v1/runs/{run_id}")["state"])

    def add_evaluation(self, run_id: str, row: dict[str, Any]) -> None:
        self._post(f"/v1/runs/{run_id}/evaluations", {"row": row}, 204)

    def end_run(self, run_id: str, state: str, report: dict[str, Any] | None) -> None:
        self._post(f"/v1/runs/{run_id}/end", {"state": state, "report": report}, 200)

    def originals(
        self, dataset_id: str, split: str, limit: int | None = None, seed: int = 0
    ) -> Batch:
        """A split's original records: all of them in stored order, or the first ``limit`` of
        a seeded shuffle. The same on every rank."""
        stream = StreamDataset(
            self.base,
            dataset_id,
            split=split,
            originals=True,
            variants=0,
            batch_size=256,
            shuffle=limit is not None,
            seed=seed,
            rank=0,
            world_size=1,
            api_key=self.api_key,
        )
        items: Batch = []
        for batch in stream:
            items.extend(batch)
            if limit is not None and len(items) >= limit:
                return items[:limit]
        return items

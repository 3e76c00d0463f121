"""A torch ``IterableDataset`` over the service's ``/v1/datasets/{id}/stream``.

It yields the service's batches (lists of ``{id, variant, text, label}``), remembers the resume
token of the last batch it handed out, and on a connection error retries with exponential
backoff from that token, so no batch is lost or repeated. ``state_dict()`` /
``load_state_dict()`` carry the token into checkpoints. Rank and world size come from
``torch.distributed`` when it is initialised. Use it with ``DataLoader(..., batch_size=None)``
(the service batches) and no loader workers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import torch.distributed as dist
from torch.utils.data import IterableDataset

Batch = list[dict[str, Any]]
RETRYABLE = (httpx.TransportError, httpx.RemoteProtocolError)


class ServiceError(RuntimeError):
    """The service could not be reached, refused a request, or holds data the run cannot use
    (a dataset of the wrong task or without a validation split, a failed augmentation job)."""


class StreamError(ServiceError):
    """A training stream failed past its retries."""


class StreamDataset(IterableDataset[Batch]):
    def __init__(
        self,
        service: str,
        dataset: str,
        *,
        job: str | None = None,
        split: str = "train",
        originals: bool = True,
        variants: int | None = None,
        batch_size: int = 32,
        shuffle: bool = True,
        group: bool = False,
        seed: int = 0,
        epoch: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        api_key: str | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 60.0,
    ) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else (dist.get_rank() if distributed else 0)
        self.world_size = (
            world_size if world_size is not None else (dist.get_world_size() if distributed else 1)
        )
        self.url = f"{service.rstrip('/')}/v1/datasets/{dataset}/stream"
        self.params: dict[str, Any] = {
            "split": split,
            "originals": str(originals).lower(),
            "batch_size": batch_size,
            "shuffle": str(shuffle).lower(),
            **({"group": "true"} if group else {}),
            "seed": seed,
            **({"job": job} if job else {}),
            **({"variants": variants} if variants is not None else {}),
        }
        self.epoch = epoch
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.resume_token: str | None = None
        self.reconnects = 0  # retries so far (for logs and tests)

    def set_epoch(self, epoch: int) -> None:
        """Start a new epoch (a new order); forgets the resume point."""
        self.epoch = epoch
        self.resume_token = None

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "resume_token": self.resume_token}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.resume_token = state.get("resume_token")

    def __iter__(self) -> Iterator[Batch]:
        failures = 0
        while True:
            params = (
                {"resume_token": self.resume_token, "batch_size": self.params["batch_size"]}
                if self.resume_token
                else {
                    **self.params,
                    "epoch": self.epoch,
                    "rank": self.rank,
                    "world_size": self.world_size,
                }
            )
            try:
                with httpx.stream(
                    "GET", self.url, params=params, headers=self.headers, timeout=self.timeout
                ) as response:
                    if response.status_code >= 500:
                        raise httpx.RemoteProtocolError(f"server error {response.status_code}")
                    if response.status_code != 200:
                        response.read()
                        raise StreamError(
                            f"stream refused ({response.status_code}): {response.text}"
                        )
                    for line in response.iter_lines():
                        message = _parse(line)
                        if message.get("end"):
                            self.resume_token = None
                            return
                        failures = 0
                        self.resume_token = message["resume_token"]
                        yield message["batch"]
                raise httpx.RemoteProtocolError("stream ended without its end line")
            except RETRYABLE as exc:
                failures += 1
                self.reconnects += 1
                if failures > self.retries:
                    raise StreamError(f"stream failed {failures} times in a row: {exc}") from exc
                time.sleep(self.backoff * 2 ** (failures - 1))


def _parse(line: str) -> dict[str, Any]:
    try:
        message: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError as exc:  # a line cut by a dropped connection
        raise httpx.RemoteProtocolError(f"unreadable line: {exc}") from exc
    return message

"""Settings from the environment (prefix ``ANTIFIT_``), injected with ``Depends(get_settings)``."""

from __future__ import annotations

import os
import secrets
import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.keys import ApiKey, check_unique


class Settings(BaseSettings):
    # an empty variable is an unset one: compose passes ${X:-} as ""
    model_config = SettingsConfigDict(env_prefix="ANTIFIT_", extra="ignore", env_ignore_empty=True)

    data_dir: Path = Field(default=Path("data"), description="record shards and the SQLite file")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir"
    )
    database_wait_s: float = Field(
        default=120.0,
        ge=0,
        description="at start-up, how long to wait for the database to accept connections",
    )
    resources_dir: Path | None = Field(
        default=None,
        description="named resources specs may use: lexicons/NAME.json, models/NAME/",
    )
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="any other request body, read before parsing"
    )
    max_text_chars: int = Field(default=20_000, ge=1, description="one record's text")
    shard_size: int = Field(default=10_000, ge=1, description="records per Parquet shard")
    max_sync_records: int = Field(default=1_000, ge=1, description="POST /v1/augment limit")
    max_sync_variants: int = Field(
        default=10_000, ge=1, description="records x n_variants of one POST /v1/augment"
    )
    max_sync_output_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    augment_deadline_s: float = Field(
        default=30.0, gt=0, description="POST /v1/augment: 503 beyond this"
    )
    page_size_max: int = Field(default=1_000, ge=1)
    max_streams: int = Field(default=64, ge=1, description="streams served at once (429 beyond)")
    stream_write_timeout_s: float = Field(
        default=120.0, gt=0, description="a stream whose client takes nothing this long ends"
    )
    stream_threads: int = Field(
        default=8, ge=1, description="threads reading shards for streams, of the shared pool"
    )
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='[{"name", "role", "sha256"}, ...]; empty: no authentication',
    )
    allow_anonymous: bool = Field(
        default=False, description="serve a non-loopback address without API keys"
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        description="signs page and resume tokens; default: generated in data_dir",
    )
    max_shard_output_bytes: int = Field(
        default=1 << 30, ge=1, description="variant text one job shard may write"
    )
    shard_deadline_s: float = Field(
        default=3600.0, gt=0, description="a job shard running longer fails its job"
    )
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="job worker processes"
    )
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="where job shards run: a local process pool, or a Ray cluster (antifit[ray])",
    )
    ray_address: str | None = Field(
        default=None,
        max_length=500,
        description="the Ray cluster to join; default RAY_ADDRESS, else a local one",
    )
    ray_connect_s: float = Field(
        default=120.0, ge=0, description="how long to keep trying to reach the Ray cluster"
    )
    ray_num_cpus: float = Field(default=1.0, ge=0, description="CPUs a shard task reserves")
    ray_num_gpus: float = Field(default=0.0, ge=0, description="GPUs a shard task reserves")
    ray_max_retries: int = Field(
        default=3, ge=0, le=100, description="retries of a shard whose Ray worker died"
    )
    replica_id: str = Field(
        default_factory=lambda: default_replica_id(),
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="this server among replicas sharing a database; unique to each",
    )
    job_poll_s: float = Field(
        default=1.0,
        gt=0,
        description="how often an idle server looks for jobs queued through another replica",
    )
    job_lease_s: float = Field(
        default=30.0,
        ge=1.0,
        description="a replica that has not renewed its claim on a job for this long loses it",
    )

    @field_validator("api_keys")
    @classmethod
    def _unique(cls, keys: list[ApiKey]) -> list[ApiKey]:
        return check_unique(keys)

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'antifit.db').resolve()}"


def default_replica_id() -> str:
    """Host, process and a random tag: unique even for two servers on one host."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return f"{host[:40] or 'host'}-{os.getpid()}-{secrets.token_hex(3)}"


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""Settings from the environment (prefix ``ANTIFIT_``), injected with ``Depends(get_settings)``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANTIFIT_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="record shards and the SQLite file")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir"
    )
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    shard_size: int = Field(default=10_000, ge=1, description="records per Parquet shard")
    max_sync_records: int = Field(default=1_000, ge=1, description="POST /v1/augment limit")
    page_size_max: int = Field(default=1_000, ge=1)
    api_keys: list[str] = Field(default_factory=list, description="empty: no authentication")
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="job worker processes"
    )

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'antifit.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""Prometheus metrics, in a registry of the app's own (several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.uploads = Counter(
            "antifit_uploads", "Dataset uploads by outcome", ["outcome"], registry=r
        )
        self.jobs = Counter(
            "antifit_jobs", "Jobs that reached a final state", ["state"], registry=r
        )
        self.job_shards = Counter("antifit_job_shards", "Job shards augmented", registry=r)
        self.job_records = Counter(
            "antifit_job_records", "Input records augmented by jobs", registry=r
        )
        self.job_variants = Counter("antifit_job_variants", "Variants written by jobs", registry=r)
        self.job_claims = Counter("antifit_job_claims", "Jobs this replica claimed", registry=r)
        self.job_claims_lost = Counter(
            "antifit_job_claims_lost", "Jobs another replica took over from this one", registry=r
        )
        self.job_lease_renewals = Counter(
            "antifit_job_lease_renewals", "Job leases this replica renewed", registry=r
        )
        self.streams = Counter("antifit_streams", "Streams opened", registry=r)
        self.streams_open = Gauge("antifit_streams_open", "Streams being served", registry=r)
        self.stream_batches = Counter("antifit_stream_batches", "Batches streamed", registry=r)
        self.stream_records = Counter("antifit_stream_records", "Records streamed", registry=r)

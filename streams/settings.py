"""Worker settings: consumer group, batch sizes and the HTTP port for /metrics and /health."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    """How a stream worker consumes and when it commits.

    ``max_batch`` bounds one ``consume()`` call; ``commit_interval_s`` bounds how long processed
    records may wait for the sink flush that lets their offsets be committed.
    """

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_WORKER_", extra="forbid")

    app_id: str = "dealstream"
    group_id: str = "dealstream-workers"
    max_batch: int = 2_000
    poll_timeout_s: float = 0.02
    commit_interval_s: float = 1.0
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    stop_when_idle_s: float | None = None
    """Stop after this long without new records (demos and tests); None runs until signalled."""
    gc_threshold: int = 50_000
    """Allocations between young-generation garbage collections (Python's default is 700).
    Pipelines keep large, long-lived state (customers, models, windows); at the default, the
    collector's scans of it cost more than some pipelines' own work (store tasks: ~20 -> ~6
    µs/event in bench/pipeline_costs.py). 0 keeps Python's default."""
    pipelines: list[str] = []
    """Names of the pipelines this worker runs (empty: all). Pipelines whose state spans every
    partition (journeys, store-tasks, rep-forecast) belong in a one-replica worker of its own
    consumer group when the partitioned ones are scaled out (deploy/k8s/worker-global.yaml)."""

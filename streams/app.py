"""The faust application: lifecycle, signals, the HTTP endpoints and the engines it runs.

faust's Kafka consumer and producer start only when the app has faust agents (low-volume
control streams); the high-volume topics are read by :class:`EngineService` instances. The one
control stream so far is ``config.rules.v1``: rule documents hot-reloaded into the pipelines.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Sequence
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dealstream.broker.settings import KafkaSettings
from dealstream.streams import rules_config
from dealstream.streams.faust_auth import broker_credentials, hide_authentication_requests
from dealstream.streams.service import EngineService
from dealstream.streams.settings import WorkerSettings

# aiohttp takes the charset separately; Prometheus' exposition format is UTF-8 anyway.
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"


def create_app(
    *, worker: WorkerSettings, kafka: KafkaSettings, services: Sequence[EngineService]
) -> faust.App:
    """Build the faust app that hosts the engines and serves /metrics, /health and /ready."""
    targets = rules_config.rule_targets(p for s in services for p in s.engine.pipelines)
    reloader = rules_config.RulesReloader(targets)
    if targets:
        # Before the engines start, so that no record is processed under stale rules.
        reloader.bootstrap(kafka)
    hide_authentication_requests()
    # faust makes its data directory (for faust tables) at start, by default "<app id>-data" in
    # the working directory. The worker has no faust tables and the control app id is new on
    # every start, so the default would leave a directory behind per start: use a scratch one.
    scratch = tempfile.TemporaryDirectory(prefix="dealstream-faust-")
    app = faust.App(
        rules_config.control_app_id(worker.app_id) if targets else worker.app_id,
        broker=f"kafka://{kafka.bootstrap}",
        broker_credentials=broker_credentials(kafka),
        web_host=worker.web_host,
        web_port=worker.web_port,
        web_in_thread=False,
        autodiscover=False,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=10,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        datadir=scratch.name,
    )
    weakref.finalize(app, scratch.cleanup)
    if targets:
        rules_config.install_agent(app, kafka, reloader)
    app.boot_strategy = app.BootStrategy(app, enable_kafka=bool(app.agents))

    @app.task  # type: ignore[untyped-decorator]  # faust is untyped
    async def start_engines(app: faust.App) -> None:
        for service in services:
            await app.add_runtime_dependency(service)

    @app.page("/metrics")
    async def metrics(self: View, request: Request) -> Response:
        return self.bytes(generate_latest(), content_type=METRICS_CONTENT_TYPE)

    @app.page("/health")
    async def health(self: View, request: Request) -> Response:
        """Liveness: every engine thread is running."""
        alive = {service.engine.name: service.alive for service in services}
        return self.json({"alive": alive}, status=200 if all(alive.values()) else 503)

    @app.page("/ready")
    async def ready(self: View, request: Request) -> Response:
        """Readiness: engines run and none is paused by backpressure."""
        state: dict[str, Any] = {
            service.engine.name: {
                "alive": service.alive,
                "paused": service.engine.paused,
            }
            for service in services
        }
        ok = all(s["alive"] and not s["paused"] for s in state.values())
        return self.json(state, status=200 if ok else 503)

    return app

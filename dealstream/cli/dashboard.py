"""``dealstream dashboard``: serve the forecast, journey and compliance dashboards locally.

Reads ClickHouse through the sink's client (``DEALSTREAM_CLICKHOUSE_URL``). An embedded chDB
directory has one owner, so point it at a directory no worker holds (e.g. the demo's, after it).
"""

from __future__ import annotations

import typer
from aiohttp import web
from rich.console import Console

from dealstream.sinks.clickhouse import ClickHouseSettings, connect, migrate
from dealstream.sinks.dashboard import sample
from dealstream.sinks.dashboard.server import create_app
from dealstream.sinks.dashboard.settings import DashboardSettings


def dashboard(
    host: str | None = typer.Option(None, help="Listen address [env DEALSTREAM_DASHBOARD_HOST]."),
    port: int | None = typer.Option(None, help="Listen port [env DEALSTREAM_DASHBOARD_PORT]."),
    apply_migrations: bool = typer.Option(
        True, "--migrate/--no-migrate", help="Apply pending migrations (the dashboard views)."
    ),
    sample_data: bool = typer.Option(
        False, "--sample-data", help="Seed sample rows first if pos_transactions is empty."
    ),
) -> None:
    """Serve the web dashboards over ClickHouse until Ctrl-C."""
    console = Console()
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = DashboardSettings(**overrides)  # type: ignore[arg-type]
    clickhouse = ClickHouseSettings()
    client = connect(settings=clickhouse)
    try:
        if apply_migrations:
            migrate(client, cluster=clickhouse.cluster)
        if sample_data and not client.command("SELECT count() FROM pos_transactions"):
            counts = sample.seed(client)
            console.print(f"seeded sample data: {counts}")
        auth = "bearer token required" if settings.token else "no token (local use only)"
        console.print(f"dashboard on http://{settings.host}:{settings.port}/forecast ({auth})")
        web.run_app(
            create_app(client=client, settings=settings),
            host=settings.host,
            port=settings.port,
            print=None,
            access_log=None,
        )
    finally:
        client.close()

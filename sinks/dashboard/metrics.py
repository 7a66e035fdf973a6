"""Prometheus series of the dashboard process, served on its own ``/metrics``.

Requests are labelled by route template (``/api/forecast``), never by the raw path, so a
scanner probing random URLs cannot blow up the number of series.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter(
    "dealstream_dashboard_requests_total", "HTTP requests answered", ["route", "status"]
)
REQUEST_SECONDS = Histogram(
    "dealstream_dashboard_request_seconds",
    "Time to answer a request (API requests include their ClickHouse queries)",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def route_of(request: web.Request) -> str:
    """The matched route's template, or ``unmatched``."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def observe(request: web.Request, status: int, elapsed_s: float) -> None:
    route = route_of(request)
    REQUESTS.labels(route, str(status)).inc()
    REQUEST_SECONDS.labels(route).observe(elapsed_s)


async def serve(_: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response

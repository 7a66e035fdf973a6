"""Reading paged JSON APIs with httpx: what a status code means for a pull connector.

Connectors that poll HTTP (ERP REST, review platforms) share one reading of the answer: a
transport error, a 429 (with its ``Retry-After``) or a 5xx is transient and retried by the SDK;
any other non-200 is a configuration error that stops the connector with what to check; a body
that is not ``{"data": [...], ...}`` is a configuration error too (wrong path or API version).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import SecretStr

from dealstream.connectors.base import CheckResult
from dealstream.connectors.sdk.errors import ConfigError, TransientError


def json_client(
    base_url: str,
    *,
    token: SecretStr | None,
    timeout_s: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An httpx client for a JSON API, with the bearer token when one is configured."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
    )


def retry_after_s(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date).

    >>> retry_after_s("3"), retry_after_s(None), retry_after_s("soon")
    (3.0, None, None)
    """
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


async def get_data_page(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], *, what: str, check: str
) -> dict[str, Any]:
    """GET one page whose body is ``{"data": [...], ...}``; ``what`` names the stream in
    errors and ``check`` says which settings to look at when the server refuses."""
    try:
        response = await client.get(path, params=params)
    except httpx.TransportError as error:
        raise TransientError(f"{what}: {error!r}") from error
    status = response.status_code
    if status == 429:
        hint = retry_after_s(response.headers.get("Retry-After"))
        raise TransientError(f"{what}: 429 Too Many Requests", retry_after=hint)
    if status >= 500:
        raise TransientError(f"{what}: {status} from {response.url}")
    if status != 200:
        raise ConfigError(
            f"GET {response.url} answered {status}: check {check} ({response.text[:200]!r})"
        )
    try:
        body = response.json()
    except json.JSONDecodeError as error:
        raise TransientError(f"{what}: body is not JSON: {error}") from error
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ConfigError(f"GET {response.url}: expected {{'data': [...], 'next_cursor'}}")
    return body


async def check_pages(
    client: httpx.AsyncClient, base_url: str, paths: Sequence[str]
) -> CheckResult:
    """The deploy-time check of a paged API: every path answers 200 to ``limit=1``."""
    for path in paths:
        try:
            answer = await client.get(path, params={"limit": 1})
        except httpx.HTTPError as error:
            return CheckResult(False, f"{base_url}: {error!r}")
        if answer.status_code != 200:
            return CheckResult(False, f"GET {answer.url} answered {answer.status_code}")
    return CheckResult(True, f"{base_url} answers for {list(paths)}")

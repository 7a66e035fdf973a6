"""Configuration of the ClickHouse sink, read from ``DEALSTREAM_CLICKHOUSE_*``.

One URL selects the backend, so a laptop and a cluster differ by one variable:

- ``chdb:///abs/path`` or ``chdb://./relative/path``: embedded chDB storing data in that directory
  (``?database=name`` picks the database, default ``dealstream``);
- ``http(s)://user:password@host:8123/db``: a ClickHouse server (``DEALSTREAM_CLICKHOUSE_PASSWORD``
  overrides the password so it need not sit in the URL).

>>> parse_url("chdb:///var/lib/dealstream/chdb")
ChdbTarget(path=PosixPath('/var/lib/dealstream/chdb'), database='dealstream')
>>> parse_url("https://bi:s3cret@ch.example:8443/sales").password
SecretStr('**********')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, field_serializer, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE = "dealstream"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_HELP = (
    "expected chdb:///absolute/path, chdb://./relative/path or "
    "http(s)://user:password@host:8123/database"
)


@dataclass(frozen=True, slots=True)
class ChdbTarget:
    """Embedded chDB: one directory, owned by one process."""

    path: Path
    database: str = DEFAULT_DATABASE


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """A ClickHouse server reached over HTTP(S)."""

    host: str
    port: int
    username: str
    password: SecretStr
    database: str
    secure: bool


Target = ChdbTarget | HttpTarget


def _database(name: str, url: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(
            f"invalid database name {name!r} in DEALSTREAM_CLICKHOUSE_URL={_redact(url)!r}: "
            "use letters, digits and underscores"
        )
    return name


def _redact(url: str) -> str:
    """Hide a password before a URL goes into an error message."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def parse_url(url: str, *, password: SecretStr | None = None, cwd: Path | None = None) -> Target:
    """Parse a sink URL; raise ``ValueError`` saying what to fix when it is wrong."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "chdb":
        if parts.netloc in ("memory", ":memory:"):
            raise ValueError(
                f"chDB URL {url!r} is in-memory: the sink needs durable storage, {_URL_HELP}"
            )
        if parts.netloc in ("", "."):
            raw = unquote(parts.path)
            if parts.netloc == ".":
                raw = raw.lstrip("/") or "."
        else:
            raise ValueError(
                f"chDB URL {url!r} names host {parts.netloc!r}: {_URL_HELP} "
                "(note the three slashes before an absolute path)"
            )
        if not raw or raw in ("memory", ":memory:"):
            raise ValueError(
                f"chDB URL {url!r} has no directory: the sink needs durable storage, {_URL_HELP}"
            )
        base = cwd if cwd is not None else Path.cwd()
        path = Path(raw) if Path(raw).is_absolute() else base / raw
        extra = set(query) - {"database"}
        if extra:
            raise ValueError(f"chDB URL {url!r} has unknown options {sorted(extra)}: only database")
        return ChdbTarget(
            path=path, database=_database(query.get("database", DEFAULT_DATABASE), url)
        )
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError(f"URL {_redact(url)!r} has no host: {_URL_HELP}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"URL {_redact(url)!r} has an invalid port: {exc}") from None
        secure = parts.scheme == "https"
        db = unquote(parts.path.strip("/")) or DEFAULT_DATABASE
        secret = password
        if secret is None or not secret.get_secret_value():
            secret = SecretStr(unquote(parts.password or ""))
        return HttpTarget(
            host=parts.hostname,
            port=port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=secret,
            database=_database(db, url),
            secure=secure,
        )
    raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {_redact(url)!r}: {_URL_HELP}")


def _default_url() -> str:
    return f"chdb://{Path.cwd().resolve() / '.local' / 'chdb'}"


class ClickHouseSettings(BaseSettings):
    """Where the sink writes and how it batches; read once at startup."""

    model_config = SettingsConfigDict(
        env_prefix="DEALSTREAM_CLICKHOUSE_", frozen=True, hide_input_in_errors=True
    )

    url: str = Field(default_factory=_default_url, repr=False)
    password: SecretStr | None = None
    batch_rows: int = Field(default=20_000, gt=0)
    batch_interval_s: float = Field(default=1.0, gt=0)
    max_pending_rows: int = Field(default=200_000, gt=0)
    flush_retry_s: float = Field(
        default=5.0,
        ge=0,
        description="seconds one flush retries a failing insert",
    )
    dedup_tokens: bool = Field(
        default=True, description="send insert_deduplication_token so a retried batch lands once"
    )
    cluster: str | None = Field(
        default=None,
        description="a server cluster's name: migrations create Replicated*MergeTree tables "
        "per shard plus Distributed tables ON CLUSTER (see sinks/clickhouse/cluster.py)",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parse_url(value)
        return value

    @field_serializer("url")
    def _hide_password(self, value: str) -> str:
        """Dumps (JSON logs of the configuration) show the URL without its password."""
        return _redact(value)

    @model_validator(mode="after")
    def _check_bounds(self) -> ClickHouseSettings:
        if self.max_pending_rows < self.batch_rows:
            raise ValueError(
                f"max_pending_rows ({self.max_pending_rows}) must be at least batch_rows "
                f"({self.batch_rows}), or a full batch would already trigger backpressure"
            )
        return self

    def target(self) -> Target:
        """The parsed URL (a relative chDB path resolves against the current directory)."""
        return parse_url(self.url, password=self.password)

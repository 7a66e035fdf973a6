"""BatchingSink against a real embedded chDB, one database per test."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError
from prometheus_client import REGISTRY

from dealstream.sinks.clickhouse import (
    BatchingSink,
    ClickHouseSettings,
    SinkBackpressure,
    SinkUnavailable,
    connect,
    migrate,
)
from dealstream.sinks.clickhouse.tables import (
    DEAD_LETTERS,
    DEAD_LETTERS_COLUMNS,
    POS_TRANSACTIONS,
    POS_TRANSACTIONS_COLUMNS,
)


def pos_row(
    event_id: str, *, offset: int = 0, ingested_s: int = 0, amount: str = "9.90"
) -> tuple[Any, ...]:
    """A pos_transactions row in POS_TRANSACTIONS_COLUMNS order."""
    return (
        event_id,
        "pos",
        "pos.transaction_line",
        datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        datetime(2025, 3, 1, 12, 0, ingested_s, tzinfo=UTC),
        "c-1",
        "tx-1",
        1,
        "store-7",
        "east",
        "SKU-1",
        "beverages",
        1,
        Decimal(amount),
        Decimal("0.00"),
        Decimal(amount),
        "CNY",
        "wechat_pay",
        None,
        "cashier-3",
        False,
        "pos.transactions.v1",
        0,
        offset,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sink(
    client: Client, request: pytest.FixtureRequest, clock: FakeClock | None = None, **overrides: Any
) -> BatchingSink:
    base: dict[str, Any] = {
        "batch_rows": 5,
        "batch_interval_s": 1.0,
        "max_pending_rows": 12,
        "flush_retry_s": 0,
    }
    base.update(overrides)
    settings = ClickHouseSettings(url=f"chdb:///unused?database={client.database}", **base)
    sink = BatchingSink(
        client, settings=settings, name=request.node.name, clock=clock or FakeClock()
    )
    sink.register(POS_TRANSACTIONS, POS_TRANSACTIONS_COLUMNS)
    return sink


def _rows(n: int, start: int = 0) -> list[tuple[Any, ...]]:
    return [pos_row(f"e{i}", offset=i) for i in range(start, start + n)]


def _count(client: Client, final: bool = False) -> int:
    return int(
        client.query(
            f"SELECT count() FROM pos_transactions{' FINAL' if final else ''}"
        ).result_rows[0][0]
    )


def _metric(name: str, request: pytest.FixtureRequest, table: str = POS_TRANSACTIONS) -> float:
    value = REGISTRY.get_sample_value(name, {"sink": request.node.name, "table": table})
    return value or 0.0


def test_flushes_by_size(client: Client, request: pytest.FixtureRequest) -> None:
    sink = _sink(client, request)
    sink.add(POS_TRANSACTIONS, _rows(4))
    assert sink.due() == []
    sink.add(POS_TRANSACTIONS, _rows(7, start=4))
    assert sink.due() == [POS_TRANSACTIONS]
    report = sink.flush()
    assert report.rows == {POS_TRANSACTIONS: 11}
    assert report.duration_s > 0
    assert sink.pending_rows == 0
    assert _count(client) == 11
    # 11 rows at batch_rows=5 go in as 5 + 5 + 1
    assert _metric("dealstream_clickhouse_batch_rows_count", request) == 3
    assert _metric("dealstream_clickhouse_rows_written_total", request) == 11
    assert _metric("dealstream_clickhouse_pending_rows", request) == 0


def test_flushes_by_age(client: Client, request: pytest.FixtureRequest) -> None:
    clock = FakeClock()
    sink = _sink(client, request, clock)
    sink.add(POS_TRANSACTIONS, _rows(2))
    clock.now += 0.5
    sink.add(POS_TRANSACTIONS, _rows(1, start=2))
    assert sink.due() == []
    assert sink.flush().rows == {}
    clock.now += 0.5  # the oldest row is now 1 s old
    assert sink.due() == [POS_TRANSACTIONS]
    assert sink.flush().total_rows == 3
    clock.now += 5
    assert sink.due() == []  # nothing pending, nothing due


def test_flush_all_writes_everything_regardless_of_bounds(
    client: Client, request: pytest.FixtureRequest
) -> None:
    sink = _sink(client, request)
    sink.register(DEAD_LETTERS, DEAD_LETTERS_COLUMNS)
    sink.add(POS_TRANSACTIONS, _rows(1))
    raw = b"\x00\xffnot avro"
    failed_at = datetime(2025, 3, 1, tzinfo=UTC)
    sink.add(
        DEAD_LETTERS,
        [
            (
                "pos.transactions.v1",
                2,
                41,
                "decode",
                "pos",
                "E_AVRO",
                "bad magic",
                failed_at,
                None,
                raw,
            )
        ],
    )
    assert sink.flush_all().rows == {POS_TRANSACTIONS: 1, DEAD_LETTERS: 1}
    assert client.query(
        "SELECT value FROM dead_letters", column_formats={"value": "bytes"}
    ).result_rows == [(raw,)]
    assert client.query(
        "SELECT original_topic, stage, error_code, records FROM dead_letters_daily"
    ).result_rows == [("pos.transactions.v1", "decode", "E_AVRO", 1)]


def test_one_insert_context_per_table_is_reused(
    client: Client, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[Any] = []
    original = client.create_insert_context

    def spy(*args: Any, **kwargs: Any) -> Any:
        created.append(original(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(client, "create_insert_context", spy)
    sink = _sink(client, request)
    for round_ in range(3):
        sink.add(POS_TRANSACTIONS, _rows(5, start=5 * round_))
        sink.flush()
    assert len(created) == 1
    assert created[0].data is None  # no batch is kept alive between flushes
    assert _count(client) == 15


def test_same_event_twice_collapses_under_final(
    client: Client, request: pytest.FixtureRequest
) -> None:
    sink = _sink(client, request)
    sink.add(POS_TRANSACTIONS, [pos_row("dup", ingested_s=1, amount="1.00")])
    sink.flush_all()
    sink.add(POS_TRANSACTIONS, [pos_row("dup", ingested_s=2, amount="2.00")])
    sink.flush_all()
    assert _count(client) == 2  # two parts until a merge
    assert _count(client, final=True) == 1
    newest = client.query("SELECT amount FROM pos_transactions_dedup").result_rows
    assert newest == [(Decimal("2.00"),)]  # the row with the latest ingested_at wins
    client.command("OPTIMIZE TABLE pos_transactions FINAL")
    assert _count(client) == 1


def test_dedup_token_makes_a_repeated_insert_land_once(client: Client) -> None:
    ctx = client.create_insert_context(
        table=POS_TRANSACTIONS, column_names=list(POS_TRANSACTIONS_COLUMNS)
    )
    for amount in ("1.00", "1.00", "3.00"):  # a lost response makes the caller send it again
        ctx.data = [pos_row("a", amount=amount), pos_row("b", amount=amount)]
        ctx.settings["insert_deduplication_token"] = "sink-1-7"
        client.insert(context=ctx)
    # Same token: later blocks are dropped even when their content differs (the token decides).
    assert _count(client) == 2
    total = client.query("SELECT sum(amount) FROM pos_transactions").result_rows
    assert total == [(Decimal("2.00"),)]


def test_failed_insert_keeps_the_batch_and_backpressure_stops_intake(
    client: Client, request: pytest.FixtureRequest
) -> None:
    sink = _sink(client, request)
    sink.add(POS_TRANSACTIONS, _rows(3))
    client.command("RENAME TABLE pos_transactions TO pos_transactions_away")
    with pytest.raises(SinkUnavailable) as failure:
        sink.flush_all()
    assert failure.value.transient and failure.value.rows == 3
    assert _metric("dealstream_clickhouse_insert_failures_total", request) == 1

    sink.add(POS_TRANSACTIONS, _rows(9, start=3))  # 12 pending: at the bound
    with pytest.raises(SinkBackpressure) as pressure:
        sink.add(POS_TRANSACTIONS, _rows(1, start=12))
    assert (pressure.value.pending, pressure.value.limit) == (12, 12)
    assert sink.pending_rows == 12  # nothing dropped, the refused row was not taken
    assert _metric("dealstream_clickhouse_pending_rows", request) == 12

    client.command("RENAME TABLE pos_transactions_away TO pos_transactions")
    assert sink.flush_all().rows == {POS_TRANSACTIONS: 12}
    assert _count(client) == 12
    # The failed batch was retried as it was (3 rows, same token), then 5 + 4.
    assert _metric("dealstream_clickhouse_batch_rows_sum", request) == 12
    assert _metric("dealstream_clickhouse_batch_rows_count", request) == 3
    sink.add(POS_TRANSACTIONS, _rows(1, start=12))  # intake resumes
    assert sink.pending_rows == 1


def test_closed_client_is_reported_as_not_transient(
    settings: ClickHouseSettings, request: pytest.FixtureRequest
) -> None:
    client = connect(settings=settings)
    migrate(client)
    sink = _sink(client, request)
    sink.add(POS_TRANSACTIONS, _rows(2))
    client.close()
    with pytest.raises(SinkUnavailable) as failure:
        sink.flush_all()
    assert not failure.value.transient
    assert sink.pending_rows == 2


def test_bounded_retry_recovers_within_the_flush(
    client: Client, request: pytest.FixtureRequest
) -> None:
    clock_calls = 0
    sink = _sink(client, request, flush_retry_s=5)
    original = client.insert

    def flaky_insert(*args: Any, **kwargs: Any) -> Any:
        nonlocal clock_calls
        clock_calls += 1
        if clock_calls == 1:  # a real server error once: the table is briefly missing
            client.command("RENAME TABLE pos_transactions TO pos_transactions_away")
            try:
                return original(*args, **kwargs)
            finally:
                client.command("RENAME TABLE pos_transactions_away TO pos_transactions")
        return original(*args, **kwargs)

    client.insert = flaky_insert  # type: ignore[method-assign]
    sink.add(POS_TRANSACTIONS, _rows(2))
    assert sink.flush_all().rows == {POS_TRANSACTIONS: 2}
    assert clock_calls == 2
    assert _metric("dealstream_clickhouse_insert_failures_total", request) == 1


def test_rows_of_the_wrong_width_and_unknown_tables_are_refused(
    client: Client, request: pytest.FixtureRequest
) -> None:
    sink = _sink(client, request)
    with pytest.raises(ValueError, match="need 24 values"):
        sink.add(POS_TRANSACTIONS, [("too", "short")])
    with pytest.raises(KeyError, match="not registered"):
        sink.add("nope", [])
    assert sink.pending_rows == 0


def test_single_oversized_add_is_accepted_when_empty(
    client: Client, request: pytest.FixtureRequest
) -> None:
    sink = _sink(client, request)
    sink.add(POS_TRANSACTIONS, _rows(20))  # larger than max_pending_rows, but nothing else waits
    assert sink.flush_all().rows == {POS_TRANSACTIONS: 20}


def test_batch_whose_response_was_lost_lands_once_on_retry(
    client: Client, request: pytest.FixtureRequest
) -> None:
    sink = _sink(client, request)
    original = client.insert
    calls = 0
    tokens: list[tuple[str, int]] = []

    def lossy_insert(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        ctx = kwargs["context"]
        tokens.append((ctx.settings["insert_deduplication_token"], len(ctx.data)))
        summary = original(*args, **kwargs)
        if calls == 1:  # written, but the caller never hears back
            raise OperationalError("connection reset while reading the response")
        return summary

    client.insert = lossy_insert  # type: ignore[method-assign]
    sink.add(POS_TRANSACTIONS, _rows(3))
    with pytest.raises(SinkUnavailable):
        sink.flush_all()
    sink.add(POS_TRANSACTIONS, _rows(2, start=3))  # arrives before the retry
    assert sink.flush_all().rows == {POS_TRANSACTIONS: 5}
    assert _count(client) == 5  # not 8: the retried batch landed once
    (first, n1), (retry, n2), (fresh, n3) = tokens
    assert (first, n1) == (retry, n2) == (first, 3)  # same rows, same token
    assert fresh != first and n3 == 2

"""POS transactions: decode, validate and normalise ``pos.transactions.v1`` into ClickHouse rows."""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import Message

from dealstream.broker.dead_letters import DeadLetter
from dealstream.broker.headers import record_headers
from dealstream.schemas import validation
from dealstream.schemas.codec import DecodeError, Decoder, SchemaResolver
from dealstream.sinks.clickhouse import tables
from dealstream.streams.pipeline import BatchResult, Row, TableSpec

TOPIC = "pos.transactions.v1"
EVENT_TYPE = "pos.transaction"
POS_TRANSACTIONS = TableSpec(tables.POS_TRANSACTIONS, tables.POS_TRANSACTIONS_COLUMNS)


class PosTransactionsPipeline:
    """One row per valid ticket line; everything else becomes a dead letter with its reason."""

    name = "pos-transactions"
    tables: tuple[TableSpec, ...] = (POS_TRANSACTIONS,)

    def __init__(self, *, topic: str = TOPIC, resolver: SchemaResolver | None = None) -> None:
        self.topics: tuple[str, ...] = (topic,)
        self._decode = Decoder(EVENT_TYPE, resolver=resolver).decode

    def _dead_letter(self, message: Message, stage: str, code: str, text: str) -> DeadLetter:
        return DeadLetter(
            topic=message.topic() or self.topics[0],
            value=message.value(),
            error_code=code,
            error_message=text,
            stage=stage,  # type: ignore[arg-type]
            # Stable across restarts, so a re-processed bad record collapses in ClickHouse.
            source=self.name,
            partition=message.partition(),
            offset=message.offset(),
            key=message.key(),
            headers=record_headers(message) or [],
        )

    def process(self, messages: Sequence[Message]) -> BatchResult:
        rows: list[Row] = []
        dead: list[DeadLetter] = []
        decode = self._decode
        check = validation.validate
        for message in messages:
            value = message.value()
            try:
                record = decode(value or b"", record_headers(message))
            except DecodeError as error:
                dead.append(self._dead_letter(message, "DECODE", error.code, error.message))
                continue
            problems = check(EVENT_TYPE, record)
            if problems:
                text = "; ".join(str(problem) for problem in problems)
                dead.append(self._dead_letter(message, "VALIDATE", problems[0].code, text))
                continue
            p = record["payload"]
            rows.append(
                (
                    record["event_id"], record["source"], record["event_type"],
                    record["occurred_at"], record["ingested_at"], record["customer_ref"],
                    p["transaction_id"], p["line_no"], p["store_id"], p["region"], p["sku"],
                    p["product_line"], p["quantity"], p["unit_price"], p["discount"], p["amount"],
                    p["currency"], p["payment_method"], p["member_id"], p["cashier_id"],
                    p["is_refund"], message.topic(), message.partition(), message.offset(),
                )
            )  # fmt: skip
        return BatchResult(
            rows={POS_TRANSACTIONS.name: rows}, dead_letters=dead, processed=len(rows)
        )

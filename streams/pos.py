"""POS transactions: decode, validate and normalise ``pos.transactions.v1`` into ClickHouse rows."""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import Message

from dealstream.schemas.codec import SchemaResolver
from dealstream.sinks.clickhouse import tables
from dealstream.streams.decoding import RecordReader
from dealstream.streams.pipeline import BatchResult, Row, TableSpec

TOPIC = "pos.transactions.v1"
EVENT_TYPE = "pos.transaction"
POS_TRANSACTIONS = TableSpec(tables.POS_TRANSACTIONS, tables.POS_TRANSACTIONS_COLUMNS)


class PosTransactionsPipeline:
    """One row per valid ticket line; everything else becomes a dead letter with its reason."""

    name = "pos-transactions"
    tables: tuple[TableSpec, ...] = (POS_TRANSACTIONS,)

    def __init__(
        self,
        *,
        topic: str = TOPIC,
        resolver: SchemaResolver | None = None,
        reader: RecordReader | None = None,
    ) -> None:
        self.topics: tuple[str, ...] = (topic,)
        self._reader = reader or RecordReader(EVENT_TYPE, resolver=resolver)

    def process(self, messages: Sequence[Message]) -> BatchResult:
        checked = self._reader.read(messages)
        rows: list[Row] = []
        for message, record in checked.records:
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
        dead = [
            r.dead_letter(source=self.name, default_topic=self.topics[0]) for r in checked.rejected
        ]
        return BatchResult(
            rows={POS_TRANSACTIONS.name: rows}, dead_letters=dead, processed=len(rows)
        )

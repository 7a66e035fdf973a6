"""No raw customer identifier reaches Kafka or ClickHouse: every topic and table is scanned.

The simulated world (mini-program openids/unionids, WeCom chats, POS member phones) and a POS
export with member phone numbers go through the real connectors' mapping code, the broker and
a worker; then every record of every topic of the run and every row of every table is searched
for the raw phone numbers, openids and unionids that went in.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.pii import Desensitizer, PiiSettings
from dealstream.connectors.pos_file.connector import PosFileConnector, PosFileSettings
from dealstream.connectors.simulator.pos import write_export
from dealstream.connectors.simulator.world import World
from tests.integration.observe import chdb_query

SEED, DAYS, CUSTOMERS = 5, 20, 100


def raw_identifiers(export: Path) -> set[bytes]:
    world = World(SEED, days=DAYS, customers=CUSTOMERS, pii=Desensitizer(PiiSettings().key))
    found = {c.phone for c in world.customers} | {c.openid for c in world.customers}
    found |= {c.unionid for c in world.customers}
    with export.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (row.get("member_phone") or "").isdigit():
                found.add(row["member_phone"])
    return {value.encode() for value in found if value}


def all_records(kafka: KafkaSettings) -> list[bytes]:
    consumer = Consumer(
        {**kafka.client_config(), "group.id": f"it-pii-{uuid.uuid4().hex}", "log_level": 0}
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        blobs: list[bytes] = []
        for name, topic in metadata.topics.items():
            if kafka.topic_prefix not in name:
                continue
            for partition in topic.partitions:
                tp = TopicPartition(name, partition)
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(name, partition, low)])
                seen = low
                while seen < high:
                    for message in consumer.consume(1000, 0.2):
                        if message.error() is None:
                            headers = b"".join(v or b"" for _, v in message.headers() or [])
                            blobs.append(
                                (message.key() or b"") + (message.value() or b"") + headers
                            )
                            seen = max(seen, (message.offset() or 0) + 1)
        return blobs
    finally:
        consumer.close()


def test_no_topic_or_table_holds_a_raw_phone_openid_or_unionid(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    export = tmp_path / "export.csv"
    write_export(export, rows=600, seed=31, bad_rate=0.0)
    secrets = raw_identifiers(export)
    assert len(secrets) > 250
    PosFileConnector(
        PosFileSettings(paths=[export], cursor_file=tmp_path / "cursor.json"), kafka=kafka
    ).execute()
    subprocess.run(
        [sys.executable, "-m", "dealstream.cli.main", "simulate", "--seed", str(SEED),
         "--days", str(DAYS), "--customers", str(CUSTOMERS), "--topic-prefix", kafka.topic_prefix,
         "--effects", str(tmp_path / "world.json"), "--no-create-topics"],
        check=True, stdout=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    chdb = tmp_path / "chdb"
    worker_factory(kafka, chdb, f"it-pii-{uuid.uuid4().hex[:6]}", "--idle-stop", "4").run()

    records = all_records(kafka)
    assert len(records) > 1_000
    leaks = [s for s in secrets if any(s in blob for blob in records)]
    assert leaks == [], f"raw identifiers on Kafka: {leaks[:5]}"

    tables = [row[0] for row in chdb_query(chdb, "SHOW TABLES")]
    assert "pos_transactions" in tables
    dump = b"\n".join(
        str(chdb_query(chdb, f"SELECT * FROM `{table}`")).encode() for table in tables
    )
    leaks = [s for s in secrets if s in dump]
    assert leaks == [], f"raw identifiers in ClickHouse: {leaks[:5]}"

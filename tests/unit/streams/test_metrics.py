"""Consumer lag from librdkafka's statistics, and the per-batch counters."""

from __future__ import annotations

import json

from prometheus_client import REGISTRY

from dealstream.streams import metrics


def test_lag_comes_from_the_statistics_of_active_partitions_only() -> None:
    on_stats = metrics.lag_from_statistics("lag-test")
    document = {
        "topics": {
            "pos.transactions.v1": {
                "partitions": {
                    "0": {"fetch_state": "active", "consumer_lag": 42},
                    "1": {"fetch_state": "none", "consumer_lag": 7},  # not ours
                    "2": {"fetch_state": "active", "consumer_lag": -1},  # not known yet
                    "-1": {"fetch_state": "none", "consumer_lag": 3},  # librdkafka's UA partition
                }
            }
        }
    }
    on_stats(json.dumps(document))
    on_stats("not json")  # ignored, never raises into librdkafka's callback

    def lag(partition: str) -> float | None:
        return REGISTRY.get_sample_value(
            "dealstream_consumer_lag",
            {"pipeline": "lag-test", "topic": "pos.transactions.v1", "partition": partition},
        )

    assert lag("0") == 42
    assert lag("1") is None and lag("2") is None and lag("-1") is None

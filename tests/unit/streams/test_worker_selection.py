"""A worker runs the pipelines its settings name, and refuses names it does not know."""

from __future__ import annotations

import pytest

from dealstream.broker.settings import KafkaSettings
from dealstream.streams.settings import WorkerSettings
from dealstream.streams.worker import default_pipelines, select_pipelines


def test_pipelines_come_from_the_environment_as_a_json_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEALSTREAM_WORKER_PIPELINES", '["journeys", "store-tasks"]')
    names = WorkerSettings().pipelines
    chosen = select_pipelines(default_pipelines(KafkaSettings()), names)
    assert [p.name for p in chosen] == ["journeys", "store-tasks"]
    assert "pos.transactions.v1" in {t for p in chosen for t in p.topics}


def test_no_names_means_every_pipeline_and_a_typo_fails_fast() -> None:
    everything = default_pipelines(KafkaSettings())
    assert select_pipelines(everything, []) == everything
    with pytest.raises(ValueError, match="journey"):
        select_pipelines(everything, ["journey"])

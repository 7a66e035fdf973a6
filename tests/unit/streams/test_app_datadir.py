"""The worker's faust app keeps its data directory out of the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealstream.broker.settings import KafkaSettings
from dealstream.streams.app import create_app
from dealstream.streams.settings import WorkerSettings


def test_faust_data_directory_is_scratch_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = create_app(worker=WorkerSettings(), kafka=KafkaSettings(), services=[])
    app._create_directories()  # what faust does when the app starts

    datadir = Path(app.conf.datadir)
    assert datadir.is_dir()
    assert not datadir.is_relative_to(tmp_path)
    assert list(tmp_path.iterdir()) == []

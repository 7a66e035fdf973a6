"""Journey state in the changelog: only changed entries, and never half a checkpoint restored."""

from __future__ import annotations

from dealstream.streams.identity import customer_id
from dealstream.streams.journey_changelog import LEGACY_KEY, META
from dealstream.streams.pipeline import StateRecord
from tests.unit.streams.test_journeys_pipeline import (
    CHANGELOG,
    TYPES,
    DictChangelog,
    Feed,
    JourneysPipeline,
    comparable,
    core,
    pipeline,
    scenario,
)

T0, H = 1_750_000_000_000, 3_600_000


def started(log: DictChangelog) -> JourneysPipeline:
    p = pipeline(log)
    p.assigned([(t, 0) for t in TYPES])
    return p


def test_a_checkpoint_writes_only_the_entries_that_changed_and_its_metadata_last() -> None:
    f, log = Feed(), DictChangelog()
    p = started(log)
    p.process([f.sale(T0, "phone:a", "T-1"), f.sale(T0, "phone:b", "T-2", store="SH002")])
    first = p.snapshot()
    assert len(first) == 5 and first[-1].key == META  # two customers, two channels, metadata
    p.process([f.sale(T0 + H, "phone:a", "T-3")])
    second = p.snapshot()
    keys = [r.key for r in second]
    assert keys == [b"c:" + customer_id("phone:a").encode(), b"h:SH001", META]


def test_a_checkpoint_cut_short_restores_the_one_before_and_replays_to_the_same_end() -> None:
    batches = scenario(Feed())
    whole = pipeline(DictChangelog())
    expected = [comparable(whole.process(b)) for b in batches]
    log = DictChangelog()
    first = started(log)
    for batch in batches[:2]:
        first.process(batch)
    log.write(first.snapshot())
    before = core(first)
    first.process(batches[2])  # merges two customers
    records = first.snapshot()
    assert len(records) > 3
    for cut in range(1, len(records)):  # the worker dies after ``cut`` records of the checkpoint
        partial = DictChangelog()
        partial.partitions = {0: dict(log.partitions[0])}
        partial.write(records[:cut])
        second = started(partial)
        assert core(second) == before, cut
        got = [comparable(second.process(b)) for b in batches[2:]]
        assert got == expected[2:], cut
        assert core(second) == core(whole), cut
        partial.write(second.snapshot())  # rewrites what was rolled back
        assert core(started(partial)) == core(second), cut


def test_the_one_entry_state_of_version_1_is_read_and_replaced_by_entries() -> None:
    batches = scenario(Feed())
    old = pipeline(DictChangelog())
    for batch in batches[:3]:
        old.process(batch)
    log = DictChangelog()
    log.write([StateRecord(CHANGELOG, 0, LEGACY_KEY, old.state.encode())])
    second = started(log)
    assert core(second) == core(old)
    records = second.snapshot()
    assert (LEGACY_KEY, None) in [(r.key, r.value) for r in records]
    log.write(records)
    assert core(started(log)) == core(old)

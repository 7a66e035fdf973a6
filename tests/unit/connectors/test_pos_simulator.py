"""The POS simulator: bundled exports reproducible, members drawn from finite store pools."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from dealstream.connectors.simulator.pos import SAMPLES, ticket_lines, write_samples

BUNDLED = Path(__file__).resolve().parents[3] / "deploy" / "samples"


def test_bundled_exports_are_what_the_generator_writes(tmp_path: Path) -> None:
    spoiled = write_samples(tmp_path)
    for name, rows, _, _ in SAMPLES:
        assert (tmp_path / name).read_bytes() == (BUNDLED / name).read_bytes(), name
        assert 0 < spoiled[name] < rows * 0.05


def test_members_come_back_to_their_store() -> None:
    tickets: dict[str, str] = {}
    for row in ticket_lines(7, datetime(2026, 9, 1, tzinfo=UTC), 6_000):
        tickets.setdefault(row["transaction_id"], f"{row['store_id']}|{row['member_phone']}")
    anonymous = sum(1 for key in tickets.values() if key.endswith("|"))
    bought = Counter(key for key in tickets.values() if not key.endswith("|"))
    returning = sum(1 for n in bought.values() if n >= 2)
    assert 0.3 < anonymous / len(tickets) < 0.5  # some tickets carry no member
    assert 0.1 < returning / len(bought) < 0.5  # repeat buyers, not everyone
    stores = {key.split("|")[0] for key in bought}
    for key in bought:  # a member's phone belongs to one store's pool
        store, phone = key.split("|")
        assert phone[3:5] == store[-2:], key
    assert len(stores) == 12


def test_one_member_per_ticket() -> None:
    members: dict[str, set[str]] = {}
    for row in ticket_lines(3, datetime(2026, 9, 1, tzinfo=UTC), 2_000):
        members.setdefault(row["transaction_id"], set()).add(row["member_phone"])
    assert all(len(m) == 1 for m in members.values())

"""Identity resolution: links across channels, merges, order independence, snapshot/restore."""

from __future__ import annotations

import itertools
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dealstream.streams.identity import IdentityResolver, Merge, customer_id

MINIPROGRAM = ["unionid:u1", "phone:p1"]  # union id + authorised phone
WECOM = ["wecom_external:w1", "unionid:u1"]  # contact + its union id
POS = ["phone:p1"]  # member phone
ERP = ["erp_customer:C-1", "phone:p1"]  # account + contact phone


def test_four_channels_resolve_to_one_customer_named_by_its_smallest_hash() -> None:
    r = IdentityResolver()
    customers = [r.resolve(ids).customer for ids in (MINIPROGRAM, WECOM, POS, ERP)]
    everyone = {*MINIPROGRAM, *WECOM, *POS, *ERP}
    expected = min(customer_id(i) for i in everyone)
    assert customers[-1] == expected
    assert {r.customer_of(i) for i in everyone} == {expected}
    assert sorted(r.members(expected)) == sorted(everyone)
    assert len(r) == 1


def test_same_record_again_changes_nothing() -> None:
    r = IdentityResolver()
    first = r.resolve(MINIPROGRAM)
    before = json.dumps(r.snapshot(), sort_keys=True)
    again = r.resolve(list(reversed(MINIPROGRAM)))
    assert again.customer == first.customer and again.merges == ()
    assert json.dumps(r.snapshot(), sort_keys=True) == before
    assert r.resolve([]).customer is None and r.resolve(["", ""]).customer is None


def test_two_known_customers_merge_into_the_smaller_id_with_their_aliases() -> None:
    r = IdentityResolver()
    ids = [f"phone:{n}" for n in range(6)]
    singles = [r.resolve([i]).customer for i in ids]
    left = r.resolve(ids[0:3])  # three customers become one
    right = r.resolve(ids[3:6])
    assert left.customer == min(singles[0:3]) and right.customer == min(singles[3:6])
    assert sorted(m.merged for m in left.merges) == sorted(set(singles[0:3]) - {left.customer})
    both = r.resolve([ids[0], ids[5]])
    assert both.customer == min(singles)
    loser = max(left.customer, right.customer)
    # The loser and everything merged into it before are re-pointed at once: no chains.
    side = singles[3:6] if loser == right.customer else singles[0:3]
    assert {m.merged for m in both.merges} == set(side)
    assert {m.into for m in both.merges} == {both.customer}
    assert set(r.aliases(both.customer)) == set(singles) - {both.customer}
    seqs = [m.seq for m in (*left.merges, *right.merges, *both.merges)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_a_new_identifier_with_a_smaller_hash_renames_the_customer_with_a_merge() -> None:
    r = IdentityResolver()
    names = [f"phone:{n}" for n in range(50)]
    first = names[0]
    smaller = next(n for n in names[1:] if customer_id(n) < customer_id(first))
    old = r.resolve([first]).customer
    renamed = r.resolve([first, smaller])
    assert renamed.customer == customer_id(smaller)
    assert renamed.merges == (Merge(old or "", customer_id(smaller), 1),)
    # Ids created and replaced within one record were never handed out: no merge for them.
    assert IdentityResolver().resolve([first, smaller]).merges == ()


def test_components_stop_growing_at_max_identifiers() -> None:
    r = IdentityResolver(max_identifiers=3)
    r.resolve(["phone:shop", "unionid:a"])
    r.resolve(["phone:shop", "unionid:b"])
    refused = r.resolve(["phone:shop", "unionid:c"])
    assert refused.refused == 1
    assert refused.customer == r.customer_of("phone:shop")
    assert r.customer_of("unionid:c") is None
    assert len(r.members(refused.customer or "")) == 3


def test_snapshot_and_restore_give_the_same_answers() -> None:
    rng = random.Random(5)
    records = [
        [f"phone:{rng.randrange(40)}" for _ in range(rng.randrange(1, 4))] for _ in range(60)
    ]
    whole = IdentityResolver()
    answers = [whole.resolve(ids) for ids in records]
    half = IdentityResolver()
    for ids in records[:30]:
        half.resolve(ids)
    doc = json.loads(json.dumps(half.snapshot()))  # what the changelog holds
    restored = IdentityResolver.restore(doc)
    assert [restored.resolve(ids) for ids in records[30:]] == answers[30:]
    assert restored.snapshot() == whole.snapshot()


def _components(records: list[list[str]]) -> dict[str, str]:
    """Reference: connected components by repeated relabelling, named by min hash."""
    label = {i: i for ids in records for i in ids}
    changed = True
    while changed:
        changed = False
        for ids in records:
            low = min(label[i] for i in ids)
            for i in ids:
                if label[i] != low:
                    label[i], changed = low, True
    groups: dict[str, list[str]] = {}
    for i, root in label.items():
        groups.setdefault(root, []).append(i)
    return {i: min(customer_id(m) for m in members) for members in groups.values() for i in members}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 15).map(lambda n: f"phone:{n}"), min_size=1, max_size=3),
        max_size=25,
    )
)
def test_any_order_gives_the_components_and_merges_lead_to_the_live_customer(
    records: list[list[str]],
) -> None:
    expected = _components(records)
    for order in itertools.islice(itertools.permutations(records), 3):
        r = IdentityResolver(max_identifiers=100)
        latest: dict[str, tuple[int, str]] = {}
        written: set[str] = set()
        for ids in order:
            res = r.resolve(ids)
            for m in res.merges:
                latest[m.merged] = max(latest.get(m.merged, (0, "")), (m.seq, m.into))
            written.add(res.customer or "")
        assert {i: r.customer_of(i) for i in expected} == expected
        live = set(expected.values())
        for cid in written:  # every id a row was written under resolves in one lookup
            current = latest[cid][1] if cid in latest else cid
            assert current in live

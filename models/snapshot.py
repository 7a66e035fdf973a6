"""Snapshots of per-key state: one version byte, then a pickle (River models pickle cleanly).

The version byte lets a newer worker refuse a blob it cannot read instead of mis-reading it.
Snapshots come only from our own changelog topic or checkpoint store, never from outside,
which is what makes unpickling them acceptable.

>>> from dealstream.models.registry import ModelSpec
>>> from dealstream.models.state import KeyState
>>> ks = KeyState.new("k", ModelSpec("seasonal_naive"))
>>> blob = dumps(ks)
>>> blob[0], loads(blob).key
(1, 'k')
>>> try:
...     loads(b"\\x09...")
... except SnapshotError as exc:
...     print(exc)
unknown snapshot format version 9 (this build reads 1)
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping

from dealstream.models.state import KeyState

FORMAT_VERSION = 1


class SnapshotError(ValueError):
    """A blob that is not a snapshot this build can read."""


def dumps(state: KeyState) -> bytes:
    """Serialise one key's whole state."""
    return bytes([FORMAT_VERSION]) + pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def loads(blob: bytes) -> KeyState:
    """Restore a key; it is clean (equal to its snapshot) until it changes again."""
    if not blob:
        raise SnapshotError("empty snapshot")
    if blob[0] != FORMAT_VERSION:
        raise SnapshotError(
            f"unknown snapshot format version {blob[0]} (this build reads {FORMAT_VERSION})"
        )
    state = pickle.loads(blob[1:])  # noqa: S301 - our own checkpoints only (see module doc)
    if not isinstance(state, KeyState):
        raise SnapshotError(f"snapshot holds {type(state).__name__}, not KeyState")
    state.dirty = False
    return state


def checkpoint(states: Mapping[str, KeyState]) -> dict[str, bytes]:
    """Snapshot only the keys changed since the last checkpoint, and mark them clean."""
    out = {}
    for key, state in states.items():
        if state.dirty:
            out[key] = dumps(state)
            state.dirty = False
    return out

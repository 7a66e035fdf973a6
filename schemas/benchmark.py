"""Micro-benchmark of the hot path: ``python -m dealstream.schemas.benchmark``.

Prints µs per event for encode, decode (single and batched) and validation of each type's
sample record, best of several runs (the machine is shared and noisy).
"""

from __future__ import annotations

import timeit

from dealstream.schemas.catalog import all_types
from dealstream.schemas.codec import Decoder, encode
from dealstream.schemas.samples import sample_event
from dealstream.schemas.validation import validate


def _best_us(func: object, number: int) -> float:
    times = timeit.repeat(func, number=number, repeat=5)  # type: ignore[arg-type]
    return min(times) / number * 1e6


def main(number: int = 20_000) -> None:
    """Print one line per record type."""
    print(f"{'type':<20}{'bytes':>6}{'encode':>9}{'decode':>9}{'batch':>9}{'validate':>10}  (µs)")
    for et in all_types():
        record = sample_event(et.name)
        value, headers = encode(et, record)
        dec = Decoder(et)
        batch = [(value, headers)] * 1000
        print(
            f"{et.name:<20}{len(value):>6}"
            f"{_best_us(lambda: encode(et, record), number):>9.2f}"  # noqa: B023
            f"{_best_us(lambda: dec.decode(value, headers), number):>9.2f}"  # noqa: B023
            f"{_best_us(lambda: dec.decode_many(batch), number // 1000) / 1000:>9.2f}"  # noqa: B023
            f"{_best_us(lambda: validate(et, record), number):>10.2f}"  # noqa: B023
        )


if __name__ == "__main__":
    main()

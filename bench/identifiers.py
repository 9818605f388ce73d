#!/usr/bin/env python
"""Validations per second of ``identifier_error`` for fødselsnumre and organisation numbers.

    python bench/identifiers.py [--count 200000] [--runs 5] [--seed 0]

Each run checks ``--count`` values per case with a plain ``time.perf_counter`` loop and the
best run is printed. Cases: valid fødselsnumre (classic rule), fødselsnumre with a wrong
digit, valid organisation numbers (both systems), and a system that is not checked (the
cost every other identifier pays).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date

from samhandling.platform.identifiers import (
    FNR_SYSTEM,
    ORGNR_SYSTEM,
    ORGNR_SYSTEM_ALT,
    identifier_error,
)
from samhandling.synth.identifiers import fodselsnummer, organisasjonsnummer


def _rate(system: str, values: list[str], runs: int) -> float:
    """Best validations/s over ``runs`` runs of ``identifier_error(system, v)``."""
    check = identifier_error  # a local name: no global lookup in the loop
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for value in values:
            check(system, value)
        best = min(best, time.perf_counter() - start)
    return len(values) / best


def main() -> None:
    """Parse arguments, build the values, time each case and print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000, help="values per case")
    parser.add_argument("--runs", type=int, default=5, help="runs per case (best is shown)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the values")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    first = date(1930, 1, 1).toordinal()
    fnrs = [
        fodselsnummer(date.fromordinal(first + rng.randrange(30_000)), rng, rng.random() < 0.5)
        for _ in range(args.count)
    ]
    wrong = [f"{f[:10]}{(int(f[10]) + 1) % 10}" for f in fnrs]
    orgnrs = [organisasjonsnummer(rng) for _ in range(args.count)]
    assert all(identifier_error(FNR_SYSTEM, f) is None for f in fnrs[:1000])
    assert all(identifier_error(FNR_SYSTEM, f) is not None for f in wrong[:1000])
    assert all(identifier_error(ORGNR_SYSTEM, o) is None for o in orgnrs[:1000])

    cases = [
        ("FNR valid", FNR_SYSTEM, fnrs),
        ("FNR wrong check digit", FNR_SYSTEM, wrong),
        ("ORGNR valid", ORGNR_SYSTEM, orgnrs),
        ("ORGNR valid (HelseID OID)", ORGNR_SYSTEM_ALT, orgnrs),
        ("other system (unchecked)", "http://example.org/mrn", fnrs),
    ]
    print(f"identifier_error, {args.count:,} values per case, best of {args.runs} runs")
    for name, system, values in cases:
        rate = _rate(system, values, args.runs)
        print(f"  {name:28s} {rate:>12,.0f} validations/s  ({1e6 / rate:.2f} µs each)")


if __name__ == "__main__":
    main()

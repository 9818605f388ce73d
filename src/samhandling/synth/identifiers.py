"""Generators of Norwegian person and organisation identifiers for synthetic data.

Fødselsnummer, D-number and H-number (11 digits ``DDMMYY iii k1 k2``), felles hjelpenummer,
DUF-nummer, organisasjonsnummer and the register ids HPR, HER and RESH, all valid under
:mod:`samhandling.platform.identifiers`, whose check-digit helpers they use. Every generated
fødselsnummer follows the classic (pre-2032) rules, so its birth date and gender can be read
back. The identifier systems and validators that used to live here are re-exported.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from datetime import date

from samhandling.platform.identifiers import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    HER_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    RESH_SYSTEM,
    duf_check_digits,
    is_valid_d_nummer,
    is_valid_fodselsnummer,
    is_valid_organisasjonsnummer,
    organisation_check_digit,
    person_check_digits,
)
from samhandling.platform.identifiers import birth_date as fodselsnummer_birth_date

__all__ = [
    "DNR_SYSTEM",
    "FNR_SYSTEM",
    "HER_SYSTEM",
    "HPR_SYSTEM",
    "ORGNR_SYSTEM",
    "RESH_SYSTEM",
    "d_nummer",
    "duf_nummer",
    "fh_nummer",
    "fodselsnummer",
    "fodselsnummer_birth_date",
    "fodselsnumre",
    "h_nummer",
    "her_id",
    "hpr_number",
    "is_valid_d_nummer",
    "is_valid_fodselsnummer",
    "is_valid_organisasjonsnummer",
    "nth_fodselsnummer",
    "organisasjonsnummer",
    "resh_id",
]

# The check-digit weights of person_check_digits, applied here to a whole date at once.
_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


# --------------------------------------------------------------------------- fødselsnummer


def _individnummer_ranges(year: int) -> tuple[range, ...]:
    """Individnummer ranges that encode the century of ``year`` (pre-2032 rules)."""
    if 1900 <= year <= 1999:
        return (range(0, 500), range(900, 1000)) if year % 100 >= 40 else (range(0, 500),)
    if 2000 <= year <= 2039:
        return (range(500, 1000),)
    if 1854 <= year <= 1899:
        return (range(500, 750),)
    raise ValueError(f"no individnummer range for birth year {year}")


def _date_part(birth_date: date, *, d_number: bool, h_number: bool, synthetic: bool) -> str:
    day = birth_date.day + (40 if d_number else 0)
    month = birth_date.month + (80 if synthetic else 40 if h_number else 0)
    return f"{day:02d}{month:02d}{birth_date.year % 100:02d}"


@functools.cache
def _valid_individnumre(
    r1: int, r2: int, parity: int, ranges: tuple[range, ...]
) -> tuple[tuple[int, int, int], ...]:
    """(individnummer, k1, k2) for the date-part weighted sums r1, r2 (mod 11)."""
    out = []
    for r in ranges:
        for i in range(r.start + parity, r.stop, 2):
            a, b, c = i // 100, i // 10 % 10, i % 10
            k1 = (11 - (r1 + 4 * a + 5 * b + 2 * c) % 11) % 11
            if k1 == 10:
                continue
            k2 = (11 - (r2 + 5 * a + 4 * b + 3 * c + 2 * k1) % 11) % 11
            if k2 != 10:
                out.append((i, k1, k2))
    return tuple(out)


def _candidates(
    birth_date: date, female: bool, d_number: bool, synthetic: bool
) -> tuple[str, tuple[tuple[int, int, int], ...]]:
    prefix = _date_part(birth_date, d_number=d_number, h_number=False, synthetic=synthetic)
    digits = [ord(c) - 48 for c in prefix]
    r1 = sum(w * x for w, x in zip(_W1, digits, strict=False)) % 11
    r2 = sum(w * x for w, x in zip(_W2, digits, strict=False)) % 11
    ranges = _individnummer_ranges(birth_date.year)
    return prefix, _valid_individnumre(r1, r2, 0 if female else 1, ranges)


def fodselsnumre(
    birth_date: date, female: bool, *, d_number: bool = False, synthetic: bool = False
) -> Iterator[str]:
    """Every valid number for a birth date and gender, in individnummer order."""
    prefix, valid = _candidates(birth_date, female, d_number, synthetic)
    for i, k1, k2 in valid:
        yield f"{prefix}{i:03d}{k1}{k2}"


def nth_fodselsnummer(
    birth_date: date, female: bool, n: int, *, d_number: bool = False, synthetic: bool = False
) -> str:
    """The ``n``-th (0-based) number of :func:`fodselsnumre`; IndexError past the end.

    Every birth date in 1900-2039 has at least 200 valid numbers per gender (1854-1899: 100).
    """
    if n < 0:
        raise IndexError(n)
    prefix, valid = _candidates(birth_date, female, d_number, synthetic)
    i, k1, k2 = valid[n]
    return f"{prefix}{i:03d}{k1}{k2}"


def fodselsnummer(
    birth_date: date, rng: random.Random, female: bool, *, synthetic: bool = False
) -> str:
    """A random valid fødselsnummer for ``birth_date`` and gender (female: even 9th digit).

    ``synthetic=True`` adds 80 to the month, Skatteetaten's marker for synthetic test persons.
    """
    return _random_number(birth_date, rng, female, d_number=False, synthetic=synthetic)


def d_nummer(birth_date: date, rng: random.Random, female: bool, *, synthetic: bool = False) -> str:
    """A random valid D-number (day + 40) for ``birth_date`` and gender."""
    return _random_number(birth_date, rng, female, d_number=True, synthetic=synthetic)


def h_nummer(birth_date: date, rng: random.Random, female: bool) -> str:
    """A random valid H-number (month + 40) for ``birth_date`` and gender."""
    return _random_number(birth_date, rng, female, d_number=False, h_number=True)


def _random_number(
    birth_date: date,
    rng: random.Random,
    female: bool,
    *,
    d_number: bool,
    h_number: bool = False,
    synthetic: bool = False,
) -> str:
    prefix = _date_part(birth_date, d_number=d_number, h_number=h_number, synthetic=synthetic)
    ranges = _individnummer_ranges(birth_date.year)
    parity = 0 if female else 1
    while True:
        r = rng.choice(ranges)
        i = rng.randrange(r.start + parity, r.stop, 2)
        nine = f"{prefix}{i:03d}"
        check = person_check_digits(nine)
        if check is not None:
            return nine + check


def fh_nummer(rng: random.Random) -> str:
    """A random felles hjelpenummer: first digit 8 or 9, eight random digits, check digits."""
    while True:
        nine = f"{rng.choice('89')}{rng.randrange(100_000_000):08d}"
        check = person_check_digits(nine)
        if check is not None:
            return nine + check


# ------------------------------------------------------------------------ other numbers


def organisasjonsnummer(rng: random.Random) -> str:
    """A random organisasjonsnummer (9 digits, first digit 8 or 9, valid check digit)."""
    while True:
        eight = f"{rng.choice('89')}{rng.randrange(10_000_000):07d}"
        k = organisation_check_digit(eight)
        if k is not None:
            return f"{eight}{k}"


def duf_nummer(rng: random.Random) -> str:
    """A random DUF-nummer: registration year 1990-2025, six digits, two check digits."""
    ten = f"{rng.randint(1990, 2025)}{rng.randrange(1_000_000):06d}"
    return ten + duf_check_digits(ten)


def hpr_number(rng: random.Random) -> str:
    """A random HPR number: an opaque 7-9 digit integer (no published check digit)."""
    digits = rng.choice((7, 7, 7, 8, 9))
    return str(rng.randrange(10 ** (digits - 1), 10**digits))


def her_id(rng: random.Random) -> str:
    """A random HER-id: 80000-9999998, the draw the synthetic care providers use."""
    return str(rng.randrange(80_000, 9_999_999))


def resh_id(rng: random.Random) -> str:
    """A random RESH-id: a 6-7 digit integer (e.g. 705592, 4001031)."""
    return str(rng.randrange(100_000, 10_000_000))

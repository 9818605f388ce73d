"""Norwegian person and organisation identifiers: generation and validation.

Fødselsnummer and D-nummer (11 digits ``DDMMYY iii k1 k2``, two mod-11 check digits),
organisasjonsnummer (9 digits, one mod-11 check digit) and HPR numbers (opaque integers).
The algorithms are Skatteetaten's (fødselsnummer, including the rule for numbers issued
from 2032) and Brønnøysundregistrene's (organisasjonsnummer).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from datetime import date

__all__ = [
    "DNR_SYSTEM",
    "FNR_SYSTEM",
    "HER_SYSTEM",
    "HPR_SYSTEM",
    "ORGNR_SYSTEM",
    "RESH_SYSTEM",
    "d_nummer",
    "fodselsnummer",
    "fodselsnummer_birth_date",
    "fodselsnumre",
    "hpr_number",
    "is_valid_d_nummer",
    "is_valid_fodselsnummer",
    "is_valid_organisasjonsnummer",
    "nth_fodselsnummer",
    "organisasjonsnummer",
]

# Identifier systems (no-basis NamingSystems and profile slices, HL7 Norway kodeverk).
FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"
HPR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.4"
ORGNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.101"
RESH_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.102"
HER_SYSTEM = "urn:oid:2.16.578.1.12.4.1.2"

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


# --------------------------------------------------------------------------- fødselsnummer


def _check_digits(nine: str) -> str | None:
    """The two check digits for the first nine digits, or None when one would be 10."""
    d = [ord(c) - 48 for c in nine]
    k1 = (11 - sum(w * x for w, x in zip(_W1, d, strict=True)) % 11) % 11
    if k1 == 10:
        return None
    d.append(k1)
    k2 = (11 - sum(w * x for w, x in zip(_W2, d, strict=True)) % 11) % 11
    if k2 == 10:
        return None
    return f"{k1}{k2}"


def _individnummer_ranges(year: int) -> tuple[range, ...]:
    """Individnummer ranges that encode the century of ``year`` (pre-2032 rules)."""
    if 1900 <= year <= 1999:
        return (range(0, 500), range(900, 1000)) if year % 100 >= 40 else (range(0, 500),)
    if 2000 <= year <= 2039:
        return (range(500, 1000),)
    if 1854 <= year <= 1899:
        return (range(500, 750),)
    raise ValueError(f"no individnummer range for birth year {year}")


def _century(individnummer: int, yy: int) -> int | None:
    if individnummer < 500:
        return 1900
    if individnummer < 750 and yy >= 54:
        return 1800
    if yy <= 39:
        return 2000
    if individnummer >= 900:
        return 1900
    return None


def _date_part(birth_date: date, *, d_number: bool, synthetic: bool) -> str:
    day = birth_date.day + (40 if d_number else 0)
    month = birth_date.month + (80 if synthetic else 0)
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
    prefix = _date_part(birth_date, d_number=d_number, synthetic=synthetic)
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
    """A random valid D-nummer (day + 40) for ``birth_date`` and gender."""
    return _random_number(birth_date, rng, female, d_number=True, synthetic=synthetic)


def _random_number(
    birth_date: date, rng: random.Random, female: bool, *, d_number: bool, synthetic: bool
) -> str:
    prefix = _date_part(birth_date, d_number=d_number, synthetic=synthetic)
    ranges = _individnummer_ranges(birth_date.year)
    parity = 0 if female else 1
    while True:
        r = rng.choice(ranges)
        i = rng.randrange(r.start + parity, r.stop, 2)
        nine = f"{prefix}{i:03d}"
        check = _check_digits(nine)
        if check is not None:
            return nine + check


def _remainders(s: str) -> tuple[int, int]:
    """(first, second) check-sum remainders; a classic valid number has (0, 0)."""
    d = [ord(c) - 48 for c in s]
    r1 = (sum(w * x for w, x in zip(_W1, d, strict=False)) + d[9]) % 11
    r2 = sum(w * x for w, x in zip((*_W2, 1), d, strict=True)) % 11
    return r1, r2


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _is_valid(s: object, *, d_number: bool, allow_synthetic: bool, allow_2032: bool) -> bool:
    if not isinstance(s, str) or len(s) != 11 or not s.isascii() or not s.isdigit():
        return False
    r1, r2 = _remainders(s)
    if r2 != 0 or r1 > 3:
        return False
    day, month, yy = int(s[0:2]), int(s[2:4]), int(s[4:6])
    if d_number:
        if day <= 40:
            return False
        day -= 40
    if allow_synthetic and month > 80:
        month -= 80
    elif allow_synthetic and month > 40:
        month -= 40
    if r1 == 0:
        century = _century(int(s[6:9]), yy)
        if century is not None and _real_date(century + yy, month, day):
            return True
    # Numbers issued from 2032: first remainder 0-3, individnummer no longer encodes the
    # century, so the date only has to exist in some century.
    return allow_2032 and any(_real_date(c + yy, month, day) for c in (1900, 2000, 1800))


def is_valid_fodselsnummer(
    s: object, *, allow_synthetic: bool = False, allow_2032: bool = True
) -> bool:
    """True for a fødselsnummer with a real birth date and both check digits right.

    ``allow_2032`` accepts the check-digit rule for numbers issued from 2032;
    ``allow_synthetic`` accepts test-person months (+40 NAV/Dolly, +80 Skatteetaten/Tenor).
    """
    return _is_valid(s, d_number=False, allow_synthetic=allow_synthetic, allow_2032=allow_2032)


def is_valid_d_nummer(s: object, *, allow_synthetic: bool = False, allow_2032: bool = True) -> bool:
    """True for a D-nummer (day + 40) with a real birth date and both check digits right."""
    return _is_valid(s, d_number=True, allow_synthetic=allow_synthetic, allow_2032=allow_2032)


def fodselsnummer_birth_date(s: str) -> date | None:
    """Birth date in a pre-2032 fødselsnummer or D-nummer (synthetic months too), else None."""
    if len(s) != 11 or not s.isascii() or not s.isdigit() or _remainders(s) != (0, 0):
        return None
    day, month, yy = int(s[0:2]), int(s[2:4]), int(s[4:6])
    if day > 40:
        day -= 40
    if month > 80:
        month -= 80
    elif month > 40:
        month -= 40
    century = _century(int(s[6:9]), yy)
    if century is None or not _real_date(century + yy, month, day):
        return None
    return date(century + yy, month, day)


# --------------------------------------------------------------------- organisasjonsnummer


def _org_check_digit(eight: str) -> int | None:
    k = (11 - sum(w * (ord(c) - 48) for w, c in zip(_ORG_WEIGHTS, eight, strict=True)) % 11) % 11
    return None if k == 10 else k


def organisasjonsnummer(rng: random.Random) -> str:
    """A random organisasjonsnummer (9 digits, first digit 8 or 9, valid check digit)."""
    while True:
        eight = f"{rng.choice('89')}{rng.randrange(10_000_000):07d}"
        k = _org_check_digit(eight)
        if k is not None:
            return f"{eight}{k}"


def is_valid_organisasjonsnummer(s: object) -> bool:
    """True for 9 digits whose last digit is the mod-11 check digit of the first eight."""
    if not isinstance(s, str) or len(s) != 9 or not s.isascii() or not s.isdigit():
        return False
    k = _org_check_digit(s[:8])
    return k is not None and k == ord(s[8]) - 48


# ---------------------------------------------------------------------------------- HPR


def hpr_number(rng: random.Random) -> str:
    """A random HPR number: an opaque 7-9 digit integer (no published check digit)."""
    digits = rng.choice((7, 7, 7, 8, 9))
    return str(rng.randrange(10 ** (digits - 1), 10**digits))

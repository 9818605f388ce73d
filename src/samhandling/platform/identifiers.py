"""Norwegian person and organisation identifiers: systems, check digits and validation.

Dependency-free and pure; used at write time, so the validators are cheap and never raise.

* Fødselsnummer, D-nummer, H-nummer (11 digits ``DDMMYY iii k1 k2``) and felles hjelpenummer
  (11 digits, first digit 8 or 9): two mod-11 check digits, Skatteetaten's classic rule and
  its rule for numbers issued from 2032 (first remainder 0-3).
* DUF-nummer (UDI, 12 digits ``YYYY nnnnnn kk``), organisasjonsnummer (Brønnøysundregistrene,
  9 digits, one mod-11 check digit), and the register ids HER-id, HPR-nummer and RESH-id
  (opaque positive integers).

:func:`identifier_error` is the one entry point for writes: given an ``Identifier.system``
and ``value`` it returns None, or a short English message saying what is wrong.
"""

from __future__ import annotations

from datetime import date
from operator import mul
from types import MappingProxyType
from typing import Final

__all__ = [
    "DNR_SYSTEM",
    "DUF_SYSTEM",
    "FHN_SYSTEM",
    "FNR_SYSTEM",
    "HER_SYSTEM",
    "HNR_SYSTEM",
    "HPR_SYSTEM",
    "ORGNR_SYSTEM",
    "ORGNR_SYSTEMS",
    "ORGNR_SYSTEM_ALT",
    "PERSON_SYSTEMS",
    "RESH_SYSTEM",
    "SYSTEM_NAMES",
    "birth_date",
    "duf_check_digits",
    "identifier_error",
    "is_valid_d_nummer",
    "is_valid_duf_nummer",
    "is_valid_fh_nummer",
    "is_valid_fodselsnummer",
    "is_valid_h_nummer",
    "is_valid_her_id",
    "is_valid_hpr_number",
    "is_valid_organisasjonsnummer",
    "is_valid_resh_id",
    "organisation_check_digit",
    "person_check_digits",
    "person_number_kind",
]

# --------------------------------------------------------------------------------- systems
# Preferred OIDs of the no-basis NamingSystems (HL7Norway/basisprofiler-r4-fsh, file
# NamingSystem-no-basis-<id>.json) and of HL7Norway/kodeverk's NamingSystems, as FHIR
# ``urn:oid:`` systems; see also norway.md §5 and §8.
FNR_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.4.1"  # no-basis-foedselsnummer
DNR_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.4.2"  # no-basis-dnummer
FHN_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.4.3"  # no-basis-felleshjelpenummer
HPR_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.4.4"  # no-basis-helsepersonellnummer
DUF_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.4.5"  # no-basis-dufnummer
ORGNR_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.4.101"  # kodeverk no-basis-orgnr
RESH_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.4.102"  # kodeverk no-basis-resh-id
HER_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.2"  # kodeverk no-basis-her-id
# Organisation numbers as HelseID (authorization_details) and some Kjernejournal examples
# write them; no NamingSystem (norway.md §5.2).
ORGNR_SYSTEM_ALT: Final = "urn:oid:2.16.578.1.12.4.1.2.101"
# no-basis-Patient fixes system "HNR" for its H-number slice (type 8327#HNR, assigner 1..1);
# no NamingSystem (norway.md §8).
HNR_SYSTEM: Final = "HNR"

PERSON_SYSTEMS: Final = frozenset({FNR_SYSTEM, DNR_SYSTEM, FHN_SYSTEM, HNR_SYSTEM})
ORGNR_SYSTEMS: Final = frozenset({ORGNR_SYSTEM, ORGNR_SYSTEM_ALT})
# Short names (the Volven 8116/9051/8327 codes; ENH for organisation numbers).
SYSTEM_NAMES: Final = MappingProxyType(
    {
        FNR_SYSTEM: "FNR",
        DNR_SYSTEM: "DNR",
        FHN_SYSTEM: "FHN",
        HNR_SYSTEM: "HNR",
        HPR_SYSTEM: "HPR",
        DUF_SYSTEM: "DUF",
        ORGNR_SYSTEM: "ENH",
        ORGNR_SYSTEM_ALT: "ENH",
        RESH_SYSTEM: "RESH",
        HER_SYSTEM: "HER",
    }
)

# ------------------------------------------------------------------------ check digits
# Weights with a final 1 for the check digit itself: a number is valid when each weighted
# sum is 0 mod 11 (norway.md §5.1, §5.2). The sums run over the ASCII codes (bytes), so the
# validators subtract 48 * sum(weights) instead of converting each digit.
_K1: Final = (3, 7, 6, 1, 8, 9, 4, 5, 2, 1)  # d1..d9, k1
_K2: Final = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1)  # d1..d9, k1, k2
_ORG: Final = (3, 2, 7, 6, 5, 4, 3, 2, 1)  # d1..d8, k
_DUF: Final = (4, 6, 3, 2, 4, 6, 3, 2, 7, 5)  # d1..d10; kk = sum mod 11
# Both person sums in one pass: weight K1 + 1000 * K2 gives S1 + 1000 * S2 (S1 <= 9 * 46).
_K12: Final = tuple(a + 1000 * b for a, b in zip((*_K1, 0), _K2, strict=True))
_K12_BIAS: Final = 48 * sum(_K12)
_ORG_BIAS: Final = 48 * sum(_ORG)
_DUF_BIAS: Final = 48 * sum(_DUF)
_K1_BIAS9: Final = 48 * sum(_K1[:9])  # for the check-digit helpers (9 and 8 digits in)
_K2_BIAS9: Final = 48 * sum(_K2[:9])
_ORG_BIAS8: Final = 48 * sum(_ORG[:8])


def _digits(s: str, n: int) -> bool:
    return len(s) == n and s.isascii() and s.isdigit()


def person_check_digits(nine: str) -> str | None:
    """The two classic check digits for nine digits, or None when either would be 10."""
    if not _digits(nine, 9):
        raise ValueError(f"expected 9 digits, got {nine!r}")
    b = nine.encode()
    k1 = -(sum(map(mul, _K1, b)) - _K1_BIAS9) % 11
    if k1 == 10:
        return None
    k2 = -(sum(map(mul, _K2, b)) - _K2_BIAS9 + 2 * k1) % 11
    return None if k2 == 10 else f"{k1}{k2}"


def organisation_check_digit(eight: str) -> int | None:
    """The organisasjonsnummer check digit for eight digits, or None when it would be 10."""
    if not _digits(eight, 8):
        raise ValueError(f"expected 8 digits, got {eight!r}")
    k = -(sum(map(mul, _ORG, eight.encode())) - _ORG_BIAS8) % 11
    return None if k == 10 else k


def duf_check_digits(ten: str) -> str:
    """The two DUF-nummer check digits (``00``-``10``) for ten digits."""
    if not _digits(ten, 10):
        raise ValueError(f"expected 10 digits, got {ten!r}")
    return f"{(sum(map(mul, _DUF, ten.encode())) - _DUF_BIAS) % 11:02d}"


# ------------------------------------------------------------------ person numbers (11)
_NOT_STRING: Final = "must be a string"
_ELEVEN: Final = "must be 11 digits"
_CHECK_DIGITS: Final = "check digits do not match"
_NO_DATE: Final = "no such birth date"
_SYNTHETIC: Final = "synthetic test numbers are not allowed here"
_FH_FIRST: Final = "must start with 8 or 9"
_KIND_NAMES: Final = {
    "FNR": "fødselsnummer",
    "DNR": "D-number",
    "HNR": "H-number",
    "FHN": "felles hjelpenummer",
}
_ARTICLE: Final = {"FNR": "a", "DNR": "a", "HNR": "an", "FHN": "a"}
# Days per month, February with 29 (leap years are checked separately).
_DAYS: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _century(individnummer: int, yy: int) -> int | None:
    """The century a pre-2032 individnummer encodes for two-digit year ``yy`` (§5.1)."""
    if individnummer < 500:
        return 1900
    if individnummer < 750 and yy >= 54:
        return 1800
    if yy <= 39:
        return 2000
    if individnummer >= 900:
        return 1900
    return None


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _date_exists(b: bytes, day: int, month: int, r1: int, allow_2032: bool) -> bool:
    """Whether day/month/YY of ``b`` is a real date under the rule the check digits allow.

    Classic numbers (first remainder 0) take the century from the individnummer. Numbers
    under the 2032 rule (remainder 0-3) encode no century: the date must exist in some
    century (only 29 February depends on it: it exists when YY is divisible by 4).
    """
    if month < 1 or month > 12 or day < 1 or day > _DAYS[month]:
        return False
    yy = (b[4] - 48) * 10 + b[5] - 48
    if r1 == 0:
        century = _century((b[6] - 48) * 100 + (b[7] - 48) * 10 + b[8] - 48, yy)
        if century is not None and (day != 29 or month != 2 or _leap(century + yy)):
            return True
    return allow_2032 and (day != 29 or month != 2 or yy % 4 == 0)


def _wrong_kind(actual: str, synthetic: bool, expected: str) -> str:
    """E.g. "it is a D-number, not a fødselsnummer"."""
    article = "a synthetic" if synthetic else _ARTICLE[actual]
    return (
        f"it is {article} {_KIND_NAMES[actual]}, not {_ARTICLE[expected]} {_KIND_NAMES[expected]}"
    )


def _person_problem(s: object, kind: str, allow_synthetic: bool, allow_2032: bool) -> str | None:
    """Why ``s`` is not a valid person number of ``kind`` (FNR/DNR/HNR/FHN), or None."""
    if not isinstance(s, str):
        return _NOT_STRING
    if len(s) != 11 or not s.isascii() or not s.isdigit():
        return _ELEVEN
    b = s.encode()
    s2, s1 = divmod(sum(map(mul, _K12, b)) - _K12_BIAS, 1000)
    if s2 % 11:
        return _CHECK_DIGITS
    r1 = s1 % 11
    if r1 > 3 or (r1 and not allow_2032):
        return _CHECK_DIGITS
    first = b[0] - 48
    if first >= 8:  # felles hjelpenummer: no date, classic check digits (NHN)
        if r1:
            return _CHECK_DIGITS
        return None if kind == "FHN" else _wrong_kind("FHN", False, kind)
    if kind == "FHN":
        return _FH_FIRST
    day = first * 10 + b[1] - 48
    month = (b[2] - 48) * 10 + b[3] - 48
    actual = "FNR"
    synthetic = False
    if day > 40:  # D-number: day + 40
        day -= 40
        actual = "DNR"
    if month > 80:  # Skatteetaten/Tenor synthetic: month + 80
        month -= 80
        synthetic = True
    elif month > 40:
        month -= 40
        if actual == "DNR":  # NAV Dolly synthetic D-number: day + 40 and month + 40
            synthetic = True
        else:  # H-number: month + 40
            actual = "HNR"
    if not _date_exists(b, day, month, r1, allow_2032):
        return _NO_DATE
    if actual != kind:
        return _wrong_kind(actual, synthetic, kind)
    if synthetic and not allow_synthetic:
        return _SYNTHETIC
    return None


def is_valid_fodselsnummer(
    s: object, *, allow_synthetic: bool = False, allow_2032: bool = True
) -> bool:
    """True for a fødselsnummer: 11 digits, both check digits, a real birth date.

    Before 2032 the individnummer gives the century and the date must exist in it; under
    the 2032 rule (``allow_2032``) the date must exist in some century. Synthetic test
    persons (month + 80, Skatteetaten/Tenor) only with ``allow_synthetic``. Month + 40 is
    an H-number, never a fødselsnummer.
    """
    return _person_problem(s, "FNR", allow_synthetic, allow_2032) is None


def is_valid_d_nummer(s: object, *, allow_synthetic: bool = False, allow_2032: bool = True) -> bool:
    """True for a D-number: a fødselsnummer with day + 40 (41-71).

    ``allow_synthetic`` accepts synthetic D-numbers: month + 80 (Tenor) or month + 40 (NAV
    Dolly, e.g. 55507608360; with day + 40 this cannot be an H-number).
    """
    return _person_problem(s, "DNR", allow_synthetic, allow_2032) is None


def is_valid_h_nummer(s: object, *, allow_2032: bool = True) -> bool:
    """True for an H-number (local hjelpenummer): a fødselsnummer with month + 40 (41-52)."""
    return _person_problem(s, "HNR", False, allow_2032) is None


def is_valid_fh_nummer(s: object) -> bool:
    """True for a felles hjelpenummer: 11 digits, first 8 or 9, classic check digits, no date."""
    return _person_problem(s, "FHN", False, False) is None


def person_number_kind(s: object, *, allow_synthetic: bool = False) -> str | None:
    """ "FNR", "DNR", "HNR" or "FHN" for a valid number of that kind, else None."""
    if not isinstance(s, str) or len(s) != 11 or not s.isascii() or not s.isdigit():
        return None
    if s[0] in "89":
        kind = "FHN"
    elif s[0] in "4567":
        kind = "DNR"
    elif s[2] in "45":
        kind = "HNR"
    else:
        kind = "FNR"
    return kind if _person_problem(s, kind, allow_synthetic, True) is None else None


def birth_date(s: object) -> date | None:
    """Birth date in a pre-2032 fødselsnummer, D-number or H-number (synthetic months too).

    None unless both classic check digits match, the individnummer encodes a century and
    the date exists in it. Numbers under the 2032 rule encode no century: ask the register.
    """
    if not isinstance(s, str) or not _digits(s, 11):
        return None
    b = s.encode()
    s2, s1 = divmod(sum(map(mul, _K12, b)) - _K12_BIAS, 1000)
    if s1 % 11 or s2 % 11:
        return None
    day = (b[0] - 48) * 10 + b[1] - 48
    month = (b[2] - 48) * 10 + b[3] - 48
    if day > 40:
        day -= 40
    if month > 80:
        month -= 80
    elif month > 40:
        month -= 40
    if b[0] >= 56 or not _date_exists(b, day, month, 0, False):
        return None
    yy = (b[4] - 48) * 10 + b[5] - 48
    century = _century((b[6] - 48) * 100 + (b[7] - 48) * 10 + b[8] - 48, yy)
    return None if century is None else date(century + yy, month, day)


# ------------------------------------------------------------------ other identifiers
_NINE: Final = "must be 9 digits"
_CHECK_DIGIT: Final = "check digit does not match"
_TWELVE: Final = "must be 12 digits"
_DUF_YEAR: Final = "the first four digits are not a plausible year"
_INTEGER: Final = "must be a positive integer (at most 2147483647) without leading zeros"
_INT32_MAX: Final = "2147483647"


def _organisation_problem(s: object) -> str | None:
    if not isinstance(s, str):
        return _NOT_STRING
    if len(s) != 9 or not s.isascii() or not s.isdigit():
        return _NINE
    return _CHECK_DIGIT if (sum(map(mul, _ORG, s.encode())) - _ORG_BIAS) % 11 else None


def is_valid_organisasjonsnummer(s: object) -> bool:
    """True for 9 digits whose last is the mod-11 check digit (weights 3,2,7,6,5,4,3,2)."""
    return _organisation_problem(s) is None


def _duf_problem(s: object) -> str | None:
    if not isinstance(s, str):
        return _NOT_STRING
    if len(s) != 12 or not s.isascii() or not s.isdigit():
        return _TWELVE
    b = s.encode()
    if (sum(map(mul, _DUF, b)) - _DUF_BIAS) % 11 != (b[10] - 48) * 10 + b[11] - 48:
        return _CHECK_DIGITS
    if not 1900 <= int(s[:4]) <= date.today().year:
        return _DUF_YEAR
    return None


def is_valid_duf_nummer(s: object) -> bool:
    """True for a DUF-nummer: 12 digits ``YYYY nnnnnn kk``.

    Checked: the year YYYY (registration year) is 1900..this year, and ``kk`` is the sum of
    the first ten digits weighted 4,6,3,2,4,6,3,2,7,5, mod 11, as two digits (00-10). UDI
    does not publish the rule (FHI's Fhi.NINCheck calls it confidential and checks the year
    only); this is the rule Statistics Norway's KOSTRA control program applies to the
    municipalities' reports (statisticsnorway/kostra-kontrollprogram, ``Fnr.isValidDUFnr``),
    and oyms/NorwegianTypes and tonneask/norsk-nummer-validering agree. Not checked: that UDI
    issued the number.
    """
    return _duf_problem(s) is None


def _integer_problem(s: object) -> str | None:
    if not isinstance(s, str):
        return _NOT_STRING
    n = len(s)
    if (
        not 1 <= n <= 10
        or not s.isascii()
        or not s.isdigit()
        or s[0] == "0"
        or (n == 10 and s > _INT32_MAX)
    ):
        return _INTEGER
    return None


def is_valid_her_id(s: object) -> bool:
    """True for a HER-id: digits, no leading zero, 1..2147483647 (AR's HerId is an xs:int)."""
    return _integer_problem(s) is None


def is_valid_hpr_number(s: object) -> bool:
    """True for an HPR number: digits, no leading zero, 1..2147483647.

    HPR publishes no format or check digit; numbers seen have 7-9 digits. The bound is the
    registers' 32-bit integer, not the lengths seen, so no real number is refused.
    """
    return _integer_problem(s) is None


def is_valid_resh_id(s: object) -> bool:
    """True for a RESH-id: digits, no leading zero, 1..2147483647 (6-7 digits seen)."""
    return _integer_problem(s) is None


# ---------------------------------------------------------------------- write-time check


def _fnr(s: object, allow_synthetic: bool) -> str | None:
    return _person_problem(s, "FNR", allow_synthetic, True)


def _dnr(s: object, allow_synthetic: bool) -> str | None:
    return _person_problem(s, "DNR", allow_synthetic, True)


def _hnr(s: object, allow_synthetic: bool) -> str | None:
    return _person_problem(s, "HNR", False, True)


def _fhn(s: object, allow_synthetic: bool) -> str | None:
    return _person_problem(s, "FHN", False, False)


def _enh(s: object, allow_synthetic: bool) -> str | None:
    return _organisation_problem(s)


def _duf(s: object, allow_synthetic: bool) -> str | None:
    return _duf_problem(s)


def _int(s: object, allow_synthetic: bool) -> str | None:
    return _integer_problem(s)


_CHECKS: Final = {
    FNR_SYSTEM: (_fnr, "fødselsnummer"),
    DNR_SYSTEM: (_dnr, "D-number"),
    HNR_SYSTEM: (_hnr, "H-number"),
    FHN_SYSTEM: (_fhn, "felles hjelpenummer"),
    DUF_SYSTEM: (_duf, "DUF number"),
    ORGNR_SYSTEM: (_enh, "organisation number"),
    ORGNR_SYSTEM_ALT: (_enh, "organisation number"),
    HPR_SYSTEM: (_int, "HPR number"),
    HER_SYSTEM: (_int, "HER-id"),
    RESH_SYSTEM: (_int, "RESH-id"),
}


def identifier_error(system: str, value: object, *, allow_synthetic: bool = False) -> str | None:
    """None if ``system`` is not one of these or ``value`` is valid for it, else why not.

    E.g. ``"'12345678901' is not a valid fødselsnummer: check digits do not match"``.
    ``allow_synthetic`` accepts synthetic test fødselsnumre and D-numbers.
    """
    check = _CHECKS.get(system)
    if check is None:
        return None
    problem = check[0](value, allow_synthetic)
    if problem is None:
        return None
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:36] + "..."
    return f"{shown} is not a valid {check[1]}: {problem}"

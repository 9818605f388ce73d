"""Normal forms shared by index extraction and queries: folded text, date ranges, references."""

from __future__ import annotations

import unicodedata

from samhandling.platform.fhir.datetimes import DateTimeFormatError, parse_range, to_micros

MIN_TIME = -(2**62)  # microseconds: an open start (a Period without start)
MAX_TIME = 2**62  # an open end
TEXT_MAX = "\U0010ffff"  # sorts after every other character, in UTF-8 byte order too


def fold(text: str) -> str:
    """Case- and accent-insensitive form: ``Åse Ødegård`` -> ``ase ødegard``."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def date_range(value: str) -> tuple[int, int]:
    """The inclusive [low, high] microsecond range a date/dateTime/instant value covers.

    Raises DateTimeFormatError for values that are not FHIR dates.
    """
    start, end = parse_range(value)
    return to_micros(start), to_micros(end) - 1


def try_date_range(value: object) -> tuple[int, int] | None:
    """`date_range` for stored values, None for anything that is not a date."""
    if type(value) is not str:
        return None
    try:
        return date_range(value)
    except DateTimeFormatError:
        return None


def split_reference(reference: str) -> tuple[str | None, str | None, str | None]:
    """``Type/id`` (optionally ``/_history/n``) -> (Type, id, None); others -> (None, None, url).

    Contained references (``#x``) give (None, None, None): they are not searchable.
    """
    if not reference or reference.startswith("#"):
        return None, None, None
    if "://" in reference or reference.startswith(("urn:", "?")):
        return None, None, reference
    segments = reference.split("/")
    if len(segments) == 4 and segments[2] == "_history":
        segments = segments[:2]
    if len(segments) == 2 and segments[0] and segments[1]:
        return segments[0], segments[1], None
    return None, None, reference

"""The write check of Consent: every Consent follows the privacy-choice profile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from samhandling.platform.fhir.engine import WriteCheck
from samhandling.platform.fhir.errors import Issue
from samhandling.services.privacy.choice import read_choice


def today() -> date:
    """Today's date in UTC (the day a choice is written, and the day choices are judged on)."""
    return datetime.now(UTC).date()


def consent_check(*, allow_synthetic: bool, on: Callable[[], date] = today) -> WriteCheck:
    """A check that refuses (422, naming the element) a Consent that breaks the profile,
    including the age rules of a power of attorney on the day it is written (``on``)."""

    def check(resource: dict) -> list[Issue]:
        _, issues = read_choice(resource, allow_synthetic=allow_synthetic, written_on=on())
        return issues

    return check

"""Fixed tables for the synthetic national registers: specialist care, pharmacy chains, labs.

The regional health authorities, hospital trusts and hospitals are real names (their
identifiers in the synthetic registers are not); pharmacy chains and private laboratories
are fictional. Every place is one of the municipalities of
:mod:`samhandling.synth.population` (by kommunenummer), so addresses can be made with its
``_address``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "NURSING_HOME_NAMES",
    "PHARMACY_CHAINS",
    "PRIVATE_LABS",
    "REGIONS",
    "Region",
    "Trust",
]


@dataclass(frozen=True, slots=True)
class Trust:
    """A hospital trust (helseforetak) with its hospitals and, optionally, a hospital lab."""

    name: str
    municipality: str  # kommunenummer of the head office
    hospitals: tuple[tuple[str, str], ...]  # (name, kommunenummer)
    lab: str | None = None  # name of the trust's laboratory unit


@dataclass(frozen=True, slots=True)
class Region:
    """A regional health authority (regionalt helseforetak) and its hospital trusts."""

    name: str
    municipality: str
    trusts: tuple[Trust, ...]


# Helse Midt-Norge's head office is in Stjørdal; Trondheim stands in for it (not in the list).
REGIONS = (
    Region(
        "Helse Sør-Øst RHF",
        "3403",
        (
            Trust(
                "Oslo universitetssykehus HF",
                "0301",
                (
                    ("Rikshospitalet", "0301"),
                    ("Ullevål sykehus", "0301"),
                    ("Radiumhospitalet", "0301"),
                ),
                "Avdeling for medisinsk biokjemi, Oslo universitetssykehus",
            ),
            Trust(
                "Sykehuset Innlandet HF",
                "3403",
                (
                    ("Sykehuset Innlandet Hamar", "3403"),
                    ("Sykehuset Innlandet Lillehammer", "3405"),
                ),
            ),
            Trust(
                "Vestre Viken HF",
                "3301",
                (("Drammen sykehus", "3301"), ("Bærum sykehus", "3201")),
            ),
            Trust(
                "Sørlandet sykehus HF",
                "4204",
                (
                    ("Sørlandet sykehus Kristiansand", "4204"),
                    ("Sørlandet sykehus Arendal", "4203"),
                ),
            ),
        ),
    ),
    Region(
        "Helse Vest RHF",
        "1103",
        (
            Trust(
                "Helse Bergen HF",
                "4601",
                (("Haukeland universitetssjukehus", "4601"),),
                "Laboratorieklinikken, Haukeland universitetssjukehus",
            ),
            Trust("Helse Stavanger HF", "1103", (("Stavanger universitetssjukehus", "1103"),)),
            Trust("Helse Fonna HF", "1106", (("Haugesund sjukehus", "1106"),)),
        ),
    ),
    Region(
        "Helse Midt-Norge RHF",
        "5001",
        (
            Trust(
                "St. Olavs hospital HF",
                "5001",
                (("St. Olavs hospital", "5001"),),
                "Klinikk for laboratoriemedisin, St. Olavs hospital",
            ),
            Trust(
                "Helse Møre og Romsdal HF",
                "1508",
                (("Ålesund sjukehus", "1508"), ("Molde sjukehus", "1506")),
            ),
        ),
    ),
    Region(
        "Helse Nord RHF",
        "1804",
        (
            Trust(
                "Universitetssykehuset Nord-Norge HF",
                "5501",
                (
                    ("Universitetssykehuset Nord-Norge Tromsø", "5501"),
                    ("Universitetssykehuset Nord-Norge Narvik", "1806"),
                ),
                "Diagnostisk klinikk, Universitetssykehuset Nord-Norge",
            ),
            Trust("Nordlandssykehuset HF", "1804", (("Nordlandssykehuset Bodø", "1804"),)),
            Trust("Finnmarkssykehuset HF", "5603", (("Finnmarkssykehuset Klinikk Alta", "5603"),)),
        ),
    ),
)

# (legal name of the main unit, brand used in the pharmacies' names, head office)
PHARMACY_CHAINS = (
    ("Fjordapotekene AS", "Fjordapoteket", "4601"),
    ("Nordstjerna Apotek AS", "Nordstjerna Apotek", "0301"),
)

# (name, kommunenummer)
PRIVATE_LABS = (
    ("Fjordlab Medisinske Laboratorier AS", "4601"),
    ("Aurora Laboratoriemedisin AS", "0301"),
)

NURSING_HOME_NAMES = (
    "Solbakken sykehjem",
    "Fjellhaug sykehjem",
    "Lindehaven bo- og behandlingssenter",
    "Kirkebakken sykehjem",
    "Furulund sykehjem",
    "Havgløtt helsehus",
    "Bjørkelund sykehjem",
    "Åsheim omsorgssenter",
    "Sentrum sykehjem",
    "Eikelund bo- og omsorgssenter",
)

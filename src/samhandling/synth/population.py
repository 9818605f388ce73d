"""Deterministic synthetic Norwegian patients and care providers as FHIR R4 transaction Bundles.

- :func:`care_providers_bundle` — Organizations (GP offices), Locations, Practitioners and
  PractitionerRoles, written with PUT and fixed ids ("org-0001", "prac-0001", ...), so
  loading it twice is idempotent.
- :func:`patient_bundle` — one patient and their record (Encounters, Observations, Conditions,
  AllergyIntolerances, MedicationRequests), written with POST; entries reference each other
  through ``urn:uuid:`` fullUrls and the care providers through relative references.

Everything is a pure function of its arguments: no clock, no global random state. Clinical
dates lie before :data:`REFERENCE_DATE`. Patient identities come from a keyed permutation of
the patient index, so every patient of one seed has a different fødselsnummer; practitioners'
fødselsnumre come from numbers no patient gets, so they never clash either. Names, streets
and municipalities are common Norwegian ones (no real persons); every resource carries the
``HTEST`` ("test health data") tag so synthetic data can be found and removed.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from samhandling.synth.identifiers import (
    FNR_SYSTEM,
    HER_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    fodselsnumre,
    hpr_number,
    nth_fodselsnummer,
    organisasjonsnummer,
)

__all__ = [
    "ICD10_SYSTEM",
    "MAX_PATIENTS_PER_SEED",
    "REFERENCE_DATE",
    "care_providers_bundle",
    "patient_bundle",
    "patient_bundles",
]

# "Today" in the synthetic world: every clinical date is on or before it.
REFERENCE_DATE = date(2025, 12, 31)
_BIRTH_FIRST = date(1930, 1, 1)
_BIRTH_LAST = date(2024, 12, 31)

# Code systems and identifier systems.
ICD10_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.7110"  # ICD-10 (Volven 7110); canonical icd-10-no
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
KOMMUNENUMMER = (
    "https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle"
)
MUNICIPALITY_EXT = "http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode"
HELSEPERSONELL_KATEGORI = "urn:oid:2.16.578.1.12.4.1.1.9060"
GODKJENNINGSTYPE = "urn:oid:2.16.578.1.12.4.1.1.7704"
SPESIALITET = "urn:oid:2.16.578.1.12.4.1.1.7426"
_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"


def _meta() -> dict[str, Any]:
    """A fresh ``meta`` with the HTEST tag (never shared: servers fill in meta in place)."""
    return {
        "tag": [
            {
                "system": _TERMINOLOGY + "v3-ActReason",
                "code": "HTEST",
                "display": "test health data",
            }
        ]
    }


# --------------------------------------------------------------------------------- word lists

# fmt: off
_FEMALE_NAMES = (
    "Anne", "Inger", "Kari", "Marit", "Ingrid", "Liv", "Eva", "Berit", "Astrid", "Bjørg",
    "Hilde", "Anna", "Solveig", "Marianne", "Randi", "Ida", "Nina", "Maria", "Elisabeth",
    "Kristin", "Emma", "Nora", "Sofie", "Olivia", "Ella", "Frida", "Sara", "Maja", "Ingeborg",
    "Thea", "Tuva", "Silje", "Camilla", "Tone", "Heidi", "Linn", "Julie", "Vilde", "Hanne",
    "Gro", "Sigrid", "Aud", "Ragnhild", "Synnøve", "Åse", "Mari", "Live", "Amalie",
)
_MALE_NAMES = (
    "Jan", "Per", "Bjørn", "Ole", "Lars", "Kjell", "Knut", "Arne", "Svein", "Thomas", "Hans",
    "Geir", "Tor", "Morten", "Terje", "Erik", "Jakob", "Emil", "Noah", "Oliver", "Filip",
    "William", "Lucas", "Henrik", "Magnus", "Aksel", "Johannes", "Sander", "Odd", "Trond",
    "Håkon", "Sindre", "Eirik", "Espen", "Rune", "Stian", "Vegard", "Øyvind", "Leif", "Gunnar",
    "Sverre", "Torbjørn", "Even", "Mathias", "Tobias", "Elias", "Isak", "Ivar",
)
_SURNAMES = (
    "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen",
    "Jensen", "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen",
    "Johannessen", "Andreassen", "Jacobsen", "Dahl", "Jørgensen", "Halvorsen", "Henriksen",
    "Lund", "Sørensen", "Jakobsen", "Moen", "Gundersen", "Iversen", "Strand", "Solberg",
    "Svendsen", "Eide", "Knutsen", "Martinsen", "Paulsen", "Bakken", "Kristoffersen",
    "Mathisen", "Lie", "Amundsen", "Nguyen", "Rasmussen", "Ali", "Lunde", "Solheim", "Berge",
    "Moe", "Nygård", "Bakke", "Fredriksen", "Holm", "Lien", "Hauge", "Myhre", "Aas", "Sæther",
    "Haugland", "Sandvik", "Rønning", "Næss", "Vik", "Haug", "Birkeland", "Ruud", "Strøm",
    "Tangen", "Ødegård", "Helland", "Bøe", "Aune", "Tveit", "Brekke", "Ahmed", "Khan", "Hussain",
)
_STREETS = (
    "Storgata", "Kirkeveien", "Skoleveien", "Parkveien", "Strandveien", "Bjørkeveien",
    "Granveien", "Furuveien", "Lindeveien", "Solbakken", "Fjellveien", "Hagegata", "Torggata",
    "Sjøgata", "Bakkeveien", "Eikeveien", "Rognveien", "Åsveien", "Myrveien", "Nordre gate",
    "Søndre gate", "Jernbanegata", "Kongens gate", "Dronningens gate", "Elveveien",
    "Lyngveien", "Tunveien", "Blåbærstien", "Løkkeveien", "Gamle kongevei", "Prestegårdsveien",
    "Fabrikkgata", "Havnegata", "Kvernhusveien", "Sollia", "Engveien",
)
# fmt: on


@dataclass(frozen=True, slots=True)
class _Municipality:
    number: str  # kommunenummer (from 1 January 2024)
    name: str
    postal: tuple[tuple[str, str], ...]  # (postnummer, poststed)
    weight: int
    phone_prefix: str


def _m(
    number: str, name: str, codes: str, weight: int, prefix: str, place: str = ""
) -> _Municipality:
    postal = tuple((c, place or name) for c in codes.split())
    return _Municipality(number, name, postal, weight, prefix)


_MUNICIPALITIES = (
    _m(
        "0301", "Oslo", "0150 0162 0175 0253 0355 0454 0467 0560 0655 0664 0771 0870 1053", 14, "22"
    ),
    _m("4601", "Bergen", "5003 5006 5014 5052 5089 5097 5141 5221", 6, "55"),
    _m("5001", "Trondheim", "7010 7012 7030 7041 7052 7067", 4, "73"),
    _m("1103", "Stavanger", "4005 4006 4010 4014 4021 4032", 3, "51"),
    _m("3201", "Bærum", "1337 1338 1339", 2, "67", "Sandvika"),
    _m("3205", "Lillestrøm", "2000 2004 2007", 2, "63"),
    _m("5501", "Tromsø", "9008 9010 9013 9019", 2, "77"),
    _m("4204", "Kristiansand", "4608 4610 4616 4630", 2, "38"),
    _m("3301", "Drammen", "3015 3019 3036 3041", 2, "32"),
    _m("3107", "Fredrikstad", "1606 1608 1613 1621", 2, "69"),
    _m("1108", "Sandnes", "4306 4307 4313 4322", 2, "51"),
    _m("1804", "Bodø", "8003 8006 8010 8012", 1, "75"),
    _m("1508", "Ålesund", "6002 6003 6008 6010", 1, "70"),
    _m("3403", "Hamar", "2317 2318 2319", 1, "62"),
    _m("3405", "Lillehammer", "2609 2614 2615", 1, "61"),
    _m("3905", "Tønsberg", "3110 3111 3116", 1, "33"),
    _m("1106", "Haugesund", "5521 5527 5528", 1, "52"),
    _m("1506", "Molde", "6413 6415 6416", 1, "71"),
    _m("4003", "Skien", "3713 3724 3727", 1, "35"),
    _m("4203", "Arendal", "4836 4838 4841", 1, "37"),
    _m("3105", "Sarpsborg", "1706 1707 1711", 1, "69"),
    _m("5006", "Steinkjer", "7713 7714 7725", 1, "74"),
    _m("1806", "Narvik", "8514 8515 8517", 1, "76"),
    _m("5603", "Alta", "9510 9511 9515", 1, "78"),
)
_MUNICIPALITY_WEIGHTS = tuple(m.weight for m in _MUNICIPALITIES)

_ORG_NAME_PATTERNS = (
    "{city} legesenter",
    "{street} legekontor",
    "Fastlegene {city}",
    "{city} helsehus",
    "Legesenteret {city} sentrum",
    "{city} allmennpraksis",
)

# ------------------------------------------------------------------------------ small helpers


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    cc: dict[str, Any] = {"coding": [_coding(system, code, display)]}
    if text:
        cc["text"] = text
    return cc


def _ref(reference: str, display: str | None = None) -> dict[str, str]:
    return {"reference": reference, "display": display} if display else {"reference": reference}


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID URN drawn from ``rng`` (deterministic, unlike uuid4)."""
    x = rng.getrandbits(128)
    x = (x & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{x:032x}"
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@functools.cache
def _summer_time(year: int) -> tuple[datetime, datetime]:
    """Local start and end of Norwegian summer time (last Sundays of March and October)."""
    march, october = date(year, 3, 31), date(year, 10, 31)
    start = march - timedelta(days=(march.weekday() + 1) % 7)
    end = october - timedelta(days=(october.weekday() + 1) % 7)
    return datetime(start.year, 3, start.day, 2), datetime(end.year, 10, end.day, 3)


def _oslo(dt: datetime) -> str:
    """Local Norwegian time as an ISO dateTime with its UTC offset (CET/CEST, EU rules)."""
    start, end = _summer_time(dt.year)
    return dt.isoformat(timespec="seconds") + ("+02:00" if start <= dt < end else "+01:00")


def _phone(rng: random.Random, mobile: bool, prefix: str = "") -> str:
    if mobile:
        return f"+47{rng.choice('49')}{rng.randrange(10_000_000):07d}"
    return f"+47{prefix}{rng.randrange(10 ** (8 - len(prefix))):0{8 - len(prefix)}d}"


_ASCII = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "é": "e", " ": "."})


def _email(given: str, family: str, n: int) -> str:
    return f"{given}.{family}{n}@example.org".lower().translate(_ASCII)


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _provider_id(kind: str, seed: int, n: int) -> str:
    return f"{kind}-{n:04d}" if seed == 0 else f"{kind}-{seed}-{n:04d}"


def _check(seed: int, organizations: int, practitioners_per_org: int) -> None:
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if organizations < 1 or practitioners_per_org < 1:
        raise ValueError("organizations and practitioners_per_org must be >= 1")


# ------------------------------------------------------------------------------ care providers


@dataclass(frozen=True, slots=True)
class _Org:
    id: str
    location_id: str
    name: str
    orgnr: str
    her_id: str
    municipality: _Municipality
    line: str
    postal: tuple[str, str]
    phone: str


@dataclass(frozen=True, slots=True)
class _Practitioner:
    id: str
    role_id: str
    org: int  # index into _Directory.orgs
    doctor: bool
    female: bool
    given: str
    family: str
    hpr: str
    phone: str
    authorised: date
    specialist: bool
    fnr: str

    @property
    def display(self) -> str:
        return f"{self.given} {self.family}"


@dataclass(frozen=True, slots=True)
class _Directory:
    orgs: tuple[_Org, ...]
    practitioners: tuple[_Practitioner, ...]
    doctors: tuple[int, ...]  # indices into practitioners


@functools.lru_cache(maxsize=32)
def _directory(seed: int, organizations: int, practitioners_per_org: int) -> _Directory:
    rng = random.Random(f"samhandling.synth/providers/{seed}")
    # Municipalities in a weighted random order (Efraimidis-Spirakis keys), then cycled.
    order = sorted(_MUNICIPALITIES, key=lambda m: rng.random() ** (1.0 / m.weight), reverse=True)
    orgs: list[_Org] = []
    seen: set[str] = set()
    for k in range(organizations):
        muni = order[k % len(order)]
        street = rng.choice(_STREETS)
        round_, pattern = divmod(k // len(order), len(_ORG_NAME_PATTERNS))
        name = _ORG_NAME_PATTERNS[pattern].format(city=muni.name, street=street)
        if round_:
            name = f"{name} {round_ + 1}"
        orgnr = organisasjonsnummer(rng)
        while orgnr in seen:
            orgnr = organisasjonsnummer(rng)
        seen.add(orgnr)
        her_id = str(rng.randrange(80_000, 9_999_999))
        while her_id in seen:
            her_id = str(rng.randrange(80_000, 9_999_999))
        seen.add(her_id)
        orgs.append(
            _Org(
                id=_provider_id("org", seed, k + 1),
                location_id=_provider_id("loc", seed, k + 1),
                name=name,
                orgnr=orgnr,
                her_id=her_id,
                municipality=muni,
                line=f"{street} {rng.randint(1, 60)}",
                postal=rng.choice(muni.postal),
                phone=_phone(rng, False, muni.phone_prefix),
            )
        )
    practitioners: list[_Practitioner] = []
    hprs: set[str] = set()
    fnrs: set[str] = set()
    for k in range(organizations):
        for j in range(practitioners_per_org):
            n = k * practitioners_per_org + j + 1
            doctor = practitioners_per_org < 3 or j < practitioners_per_org - 1
            female = rng.random() < (0.5 if doctor else 0.85)
            hpr = hpr_number(rng)
            while hpr in hprs:
                hpr = hpr_number(rng)
            hprs.add(hpr)
            given = rng.choice(_FEMALE_NAMES if female else _MALE_NAMES)
            family = rng.choice(_SURNAMES)
            phone = _phone(rng, True)
            authorised = date(rng.randint(1985, 2020), rng.randint(1, 12), rng.randint(1, 28))
            specialist = doctor and rng.random() < 0.7
            fnr = _practitioner_fnr(seed, n, authorised, female, fnrs)
            fnrs.add(fnr)
            practitioners.append(
                _Practitioner(
                    id=_provider_id("prac", seed, n),
                    role_id=_provider_id("role", seed, n),
                    org=k,
                    doctor=doctor,
                    female=female,
                    given=given,
                    family=family,
                    hpr=hpr,
                    phone=phone,
                    authorised=authorised,
                    specialist=specialist,
                    fnr=fnr,
                )
            )
    doctors = tuple(i for i, p in enumerate(practitioners) if p.doctor)
    return _Directory(tuple(orgs), tuple(practitioners), doctors)


def _practitioner_fnr(seed: int, n: int, authorised: date, female: bool, taken: set[str]) -> str:
    """A fødselsnummer for practitioner ``n``, born 23-34 years before their authorisation.

    Drawn from its own Random (the directory's stream is left as it was), and only from the
    numbers past the first ``_SLOTS`` of a birth date and gender in individnummer order:
    patients (of any seed) get only those first ``_SLOTS``, so a practitioner never shares a
    patient's number. Birth years 1940-1999 have at least 245 numbers per date and gender.
    """
    rng = random.Random(f"samhandling.synth/practitioner-fnr/{seed}/{n}")
    while True:
        year = min(1999, max(1940, authorised.year - rng.randint(23, 34)))
        first = date(year, 1, 1).toordinal()
        birth = date.fromordinal(rng.randrange(first, date(year + 1, 1, 1).toordinal()))
        available = sum(1 for _ in fodselsnumre(birth, female)) - _SLOTS
        fnr = nth_fodselsnummer(birth, female, _SLOTS + rng.randrange(available))
        if fnr not in taken:
            return fnr


def _address(line: str, postal: tuple[str, str], muni: _Municipality, use: str) -> dict[str, Any]:
    return {
        "use": use,
        "type": "physical",
        "line": [line],
        "city": postal[1],
        "district": muni.name,
        "_district": {
            "extension": [
                {
                    "url": MUNICIPALITY_EXT,
                    "valueCoding": {"system": KOMMUNENUMMER, "code": muni.number},
                }
            ]
        },
        "postalCode": postal[0],
        "country": "NO",
    }


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def care_providers_bundle(
    seed: int = 0, organizations: int = 5, practitioners_per_org: int = 4
) -> dict[str, Any]:
    """A transaction Bundle of GP offices: Organization, Location, Practitioner, PractitionerRole.

    Entries are PUTs with ids ``org-0001``, ``loc-0001``, ``prac-0001``, ``role-0001``, ...
    (``org-<seed>-0001`` etc. for seeds other than 0), so loading twice is idempotent and
    bundles of different seeds do not overwrite each other. Each office has
    ``practitioners_per_org`` practitioners: doctors (9060 ``LE``) and, from three per office,
    one nurse (``SP``). A Practitioner is identified by a fødselsnummer (born 23-34 years
    before their authorisation; never one a patient of any seed has) and an HPR number, so
    the test identity provider can sign them in as health personnel.
    """
    _check(seed, organizations, practitioners_per_org)
    directory = _directory(seed, organizations, practitioners_per_org)
    entries: list[dict[str, Any]] = []
    for org in directory.orgs:
        address = _address(org.line, org.postal, org.municipality, "work")
        entries.append(
            _put(
                {
                    "resourceType": "Organization",
                    "id": org.id,
                    "meta": _meta(),
                    "identifier": [
                        {"use": "official", "system": ORGNR_SYSTEM, "value": org.orgnr},
                        {"system": HER_SYSTEM, "value": org.her_id},
                    ],
                    "active": True,
                    "type": [
                        _concept(
                            _TERMINOLOGY + "organization-type",
                            "prov",
                            "Healthcare Provider",
                            "Allmennlegepraksis",
                        )
                    ],
                    "name": org.name,
                    "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
                    "address": [address],
                }
            )
        )
        entries.append(
            _put(
                {
                    "resourceType": "Location",
                    "id": org.location_id,
                    "meta": _meta(),
                    "status": "active",
                    "name": org.name,
                    "mode": "instance",
                    "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
                    "address": _address(org.line, org.postal, org.municipality, "work"),
                    "physicalType": _concept(
                        _TERMINOLOGY + "location-physical-type", "bu", "Building"
                    ),
                    "managingOrganization": _ref(f"Organization/{org.id}", org.name),
                }
            )
        )
    for p in directory.practitioners:
        org = directory.orgs[p.org]
        profession = ("LE", "Lege") if p.doctor else ("SP", "Sykepleier")
        qualification: list[dict[str, Any]] = [
            {  # one approval (no-basis: profession and approval type in one code)
                "code": {
                    "coding": [
                        _coding(HELSEPERSONELL_KATEGORI, *profession),
                        _coding(GODKJENNINGSTYPE, "1", "Autorisasjon"),
                    ]
                },
                "period": {"start": p.authorised.isoformat()},
            },
        ]
        if p.specialist:
            qualification.append({"code": _concept(SPESIALITET, "1", "Allmennmedisin")})
        entries.append(
            _put(
                {
                    "resourceType": "Practitioner",
                    "id": p.id,
                    "meta": _meta(),
                    "identifier": [
                        {"use": "official", "system": FNR_SYSTEM, "value": p.fnr},
                        {"use": "official", "system": HPR_SYSTEM, "value": p.hpr},
                    ],
                    "active": True,
                    "name": [{"use": "official", "family": p.family, "given": [p.given]}],
                    "telecom": [{"system": "phone", "value": p.phone, "use": "mobile"}],
                    "gender": "female" if p.female else "male",
                    "qualification": qualification,
                }
            )
        )
        role_code = (
            ("doctor", "Doctor", "Fastlege") if p.doctor else ("nurse", "Nurse", "Sykepleier")
        )
        role: dict[str, Any] = {
            "resourceType": "PractitionerRole",
            "id": p.role_id,
            "meta": _meta(),
            "active": True,
            "period": {"start": p.authorised.isoformat()},
            "practitioner": _ref(f"Practitioner/{p.id}", p.display),
            "organization": _ref(f"Organization/{org.id}", org.name),
            "code": [_concept(_TERMINOLOGY + "practitioner-role", *role_code)],
            "location": [_ref(f"Location/{org.location_id}", org.name)],
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
        }
        if p.specialist:
            role["specialty"] = [_concept(SPESIALITET, "1", "Allmennmedisin")]
        entries.append(_put(role))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# ----------------------------------------------------------------------------- patient identity

_SLOTS = 200  # fødselsnumre used per birth date and gender (at least 203 exist, 1900-2039)
_BIRTH_DAYS = _BIRTH_LAST.toordinal() - _BIRTH_FIRST.toordinal() + 1
MAX_PATIENTS_PER_SEED = _BIRTH_DAYS * 2 * _SLOTS
_HALF = (MAX_PATIENTS_PER_SEED.bit_length() + 1) // 2
_MASK = (1 << _HALF) - 1
_M64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _permute(index: int, seed: int) -> int:
    """A seed-keyed permutation of [0, MAX_PATIENTS_PER_SEED): Feistel + cycle walking."""
    keys = [_mix64(seed * 4 + r) for r in range(4)]
    x = index
    while True:
        left, right = x >> _HALF, x & _MASK
        for key in keys:
            left, right = right, left ^ (_mix64(right ^ key) & _MASK)
        x = (left << _HALF) | right
        if x < MAX_PATIENTS_PER_SEED:
            return x


def _identity(index: int, seed: int) -> tuple[date, bool, str]:
    """(birth date, female, fødselsnummer); distinct fødselsnumre for distinct indices."""
    x = _permute(index, seed)
    day, rest = divmod(x, 2 * _SLOTS)
    slot, gender = divmod(rest, 2)
    birth = date.fromordinal(_BIRTH_FIRST.toordinal() + day)
    female = gender == 0
    return birth, female, nth_fodselsnummer(birth, female, slot)


# ----------------------------------------------------------------------------- clinical content


@dataclass(frozen=True, slots=True)
class _Drug:
    atc: str
    name: str  # WHO ATC name
    text: str  # Norwegian product-like text
    dosage: str
    per_day: int
    dose: float
    unit: str
    route: tuple[str, str]
    as_needed: bool = False


_ORAL = ("26643006", "Oral route")
_INHALED = ("447694001", "Respiratory tract route")
_TOPICAL = ("6064005", "Topical route")
_NASAL = ("46713006", "Nasal route")

# fmt: off
_DRUGS = {d.atc: d for d in (
    _Drug("C09AA05", "ramipril", "Ramipril 5 mg tablett",
          "1 tablett daglig", 1, 1, "tablett", _ORAL),
    _Drug("C08CA01", "amlodipine", "Amlodipin 5 mg tablett",
          "1 tablett daglig", 1, 1, "tablett", _ORAL),
    _Drug("C09CA06", "candesartan", "Kandesartan 8 mg tablett",
          "1 tablett daglig", 1, 1, "tablett", _ORAL),
    _Drug("A10BA02", "metformin", "Metformin 500 mg tablett",
          "1 tablett 2 ganger daglig", 2, 1, "tablett", _ORAL),
    _Drug("C10AA01", "simvastatin", "Simvastatin 20 mg tablett",
          "1 tablett om kvelden", 1, 1, "tablett", _ORAL),
    _Drug("C10AA05", "atorvastatin", "Atorvastatin 20 mg tablett",
          "1 tablett daglig", 1, 1, "tablett", _ORAL),
    _Drug("R03AC02", "salbutamol", "Salbutamol 0,1 mg/dose inhalasjonsaerosol",
          "1-2 inhalasjoner ved behov", 4, 1, "inhalasjon", _INHALED, True),
    _Drug("R03BA02", "budesonide", "Budesonid 200 mikrog/dose inhalasjonspulver",
          "1 inhalasjon morgen og kveld", 2, 1, "inhalasjon", _INHALED),
    _Drug("R03BB04", "tiotropium bromide", "Tiotropium 18 mikrog inhalasjonspulver",
          "1 inhalasjon daglig", 1, 1, "inhalasjon", _INHALED),
    _Drug("H03AA01", "levothyroxine sodium", "Levotyroksin 50 mikrog tablett",
          "1 tablett daglig før frokost", 1, 1, "tablett", _ORAL),
    _Drug("N06AB06", "sertraline", "Sertralin 50 mg tablett",
          "1 tablett daglig", 1, 1, "tablett", _ORAL),
    _Drug("N06AB10", "escitalopram", "Escitalopram 10 mg tablett",
          "1 tablett daglig", 1, 1, "tablett", _ORAL),
    _Drug("A02BC02", "pantoprazole", "Pantoprazol 40 mg enterotablett",
          "1 tablett daglig", 1, 1, "tablett", _ORAL),
    _Drug("N02BE01", "paracetamol", "Paracetamol 500 mg tablett",
          "2 tabletter inntil 4 ganger daglig ved behov", 4, 2, "tablett", _ORAL, True),
    _Drug("M01AE01", "ibuprofen", "Ibuprofen 400 mg tablett",
          "1 tablett inntil 3 ganger daglig ved behov", 3, 1, "tablett", _ORAL, True),
    _Drug("B01AF02", "apixaban", "Apiksaban 5 mg tablett",
          "1 tablett 2 ganger daglig", 2, 1, "tablett", _ORAL),
    _Drug("N02CC01", "sumatriptan", "Sumatriptan 50 mg tablett",
          "1 tablett ved migreneanfall", 2, 1, "tablett", _ORAL, True),
    _Drug("J01CA08", "pivmecillinam", "Pivmecillinam 200 mg tablett",
          "1 tablett 3 ganger daglig i 3 dager", 3, 1, "tablett", _ORAL),
    _Drug("J01CE02", "phenoxymethylpenicillin", "Fenoksymetylpenicillin 660 mg tablett",
          "1 tablett 4 ganger daglig i 7 dager", 4, 1, "tablett", _ORAL),
    _Drug("D07AA02", "hydrocortisone", "Hydrokortison 1 % krem",
          "Smøres tynt på 1-2 ganger daglig", 2, 1, "påføring", _TOPICAL),
    _Drug("R06AE07", "cetirizine", "Cetirizin 10 mg tablett",
          "1 tablett daglig i pollensesongen", 1, 1, "tablett", _ORAL),
    _Drug("R01AD09", "mometasone", "Mometason 50 mikrog/dose nesespray",
          "2 spray i hvert nesebor daglig", 1, 2, "spray", _NASAL),
)}
# fmt: on

# Formulations for children under 12, where the adult one does not fit.
# fmt: off
_CHILD_DRUGS = {d.atc: d for d in (
    _Drug("J01CE02", "phenoxymethylpenicillin", "Fenoksymetylpenicillin mikstur",
          "Dosering etter vekt, 4 ganger daglig i 5 dager", 4, 5, "ml", _ORAL),
    _Drug("R06AE07", "cetirizine", "Cetirizin 1 mg/ml mikstur",
          "5 ml daglig i pollensesongen", 1, 5, "ml", _ORAL),
    _Drug("M01AE01", "ibuprofen", "Ibuprofen 20 mg/ml mikstur",
          "Dosering etter vekt, inntil 3 ganger daglig ved behov", 3, 5, "ml", _ORAL, True),
    _Drug("N02BE01", "paracetamol", "Paracetamol 24 mg/ml mikstur",
          "Dosering etter vekt, inntil 4 ganger daglig ved behov", 4, 5, "ml", _ORAL, True),
)}
# fmt: on


@dataclass(frozen=True, slots=True)
class _Diagnosis:
    code: str  # ICD-10 as in Norwegian registers (no dot)
    display: str
    min_age: int
    max_age: int
    weight: int
    chronic: bool
    drugs: tuple[str, ...]
    labs: tuple[str, ...] = ()
    fever: bool = False


# fmt: off
_DIAGNOSES = (
    _Diagnosis("I10", "Essensiell (primær) hypertensjon", 35, 120, 10, True,
               ("C09AA05", "C08CA01", "C09CA06"), ("creatinine", "egfr", "potassium", "sodium")),
    _Diagnosis("E119", "Diabetes mellitus type 2 uten komplikasjoner", 35, 120, 6, True,
               ("A10BA02",), ("hba1c", "glucose", "creatinine", "egfr")),
    _Diagnosis("E785", "Hyperlipidemi, uspesifisert", 35, 120, 6, True,
               ("C10AA01", "C10AA05"), ("cholesterol", "ldl")),
    _Diagnosis("J459", "Astma, uspesifisert", 4, 120, 5, True,
               ("R03AC02", "R03BA02")),
    _Diagnosis("J449", "Kronisk obstruktiv lungesykdom, uspesifisert", 45, 120, 3, True,
               ("R03BB04", "R03AC02")),
    _Diagnosis("E039", "Hypotyreose, uspesifisert", 18, 120, 4, True,
               ("H03AA01",), ("tsh",)),
    _Diagnosis("F329", "Depressiv episode, uspesifisert", 15, 120, 4, True,
               ("N06AB06", "N06AB10")),
    _Diagnosis("F419", "Angstlidelse, uspesifisert", 12, 120, 3, True,
               ("N06AB10",)),
    _Diagnosis("K219", "Gastroøsofageal reflukssykdom uten øsofagitt", 18, 120, 4, True,
               ("A02BC02",)),
    _Diagnosis("M179", "Kneleddsartrose, uspesifisert", 50, 120, 3, True,
               ("N02BE01",)),
    _Diagnosis("I480", "Paroksysmal atrieflimmer", 55, 120, 2, True,
               ("B01AF02",), ("hb", "creatinine", "egfr")),
    _Diagnosis("G439", "Migrene, uspesifisert", 10, 70, 3, True,
               ("N02CC01",)),
    _Diagnosis("J304", "Allergisk rhinitt, uspesifisert", 4, 120, 4, True,
               ("R06AE07", "R01AD09")),
    _Diagnosis("L209", "Atopisk eksem, uspesifisert", 0, 120, 3, True,
               ("D07AA02",)),
    _Diagnosis("M545", "Korsryggsmerter", 16, 120, 5, False,
               ("M01AE01", "N02BE01")),
    _Diagnosis("J069", "Akutt infeksjon i øvre luftveier, uspesifisert", 0, 120, 6, False,
               (), ("crp",), fever=True),
    _Diagnosis("N390", "Urinveisinfeksjon med uspesifisert lokalisasjon", 2, 120, 4, False,
               ("J01CA08",), ("crp", "leukocytes"), fever=True),
    _Diagnosis("J189", "Pneumoni, uspesifisert", 0, 120, 2, False,
               ("J01CE02",), ("crp", "leukocytes"), fever=True),
    _Diagnosis("H669", "Otitis media, uspesifisert", 0, 12, 4, False,
               ("J01CE02",), (), fever=True),
)

_ALLERGENS = (
    # (category, system, code, display, Norwegian text, criticality, reactions)
    ("medication", ATC, "J01CE02", "phenoxymethylpenicillin", "Penicillin", "high",
     ("urticaria", "rash", "anaphylaxis")),
    ("medication", ATC, "M01AE01", "ibuprofen", "Ibuprofen", "low",
     ("rash", "dyspnea")),
    ("medication", ATC, "J01EE01", "sulfamethoxazole and trimethoprim", "Trimetoprim-sulfa", "low",
     ("rash", "itching")),
    ("food", SNOMED, "256349002", "Peanut - dietary", "Peanøtter", "high",
     ("anaphylaxis", "urticaria")),
    ("food", SNOMED, "102263004", "Eggs (edible)", "Egg", "low",
     ("urticaria", "abdominal-pain")),
    ("food", SNOMED, "3718001", "Cow's milk", "Kumelk", "low",
     ("abdominal-pain", "nausea")),
    ("food", SNOMED, "44027008", "Seafood", "Skalldyr", "high",
     ("urticaria", "anaphylaxis")),
    ("environment", SNOMED, "256259004", "Pollen", "Bjørkepollen", "low",
     ("sneezing", "itching")),
    ("environment", SNOMED, "260147004", "House dust mite", "Husstøvmidd", "low",
     ("sneezing", "dyspnea")),
    ("environment", SNOMED, "111088007", "Latex", "Lateks", "low",
     ("urticaria", "itching")),
)
# fmt: on
_REACTIONS = {
    "urticaria": ("126485001", "Urticaria", "Elveblest"),
    "rash": ("271807003", "Eruption of skin", "Utslett"),
    "anaphylaxis": ("39579001", "Anaphylaxis", "Anafylaksi"),
    "dyspnea": ("267036007", "Dyspnea", "Tungpustethet"),
    "itching": ("418290006", "Itching", "Kløe"),
    "sneezing": ("76067001", "Sneezing", "Nysing"),
    "abdominal-pain": ("21522001", "Abdominal pain", "Magesmerter"),
    "nausea": ("422587007", "Nausea", "Kvalme"),
}


@dataclass(frozen=True, slots=True)
class _Lab:
    loinc: str
    display: str
    text: str
    ucum: str
    unit: str
    decimals: int
    low: float | None
    high: float | None
    mean: float
    sd: float


# fmt: off
_LABS = {
    "hb": _Lab("718-7", "Hemoglobin [Mass/volume] in Blood", "Hemoglobin",
               "g/dL", "g/dL", 1, 11.7, 17.0, 14.2, 1.1),
    "hba1c": _Lab("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol", "HbA1c",
                  "mmol/mol", "mmol/mol", 0, 20, 42, 36, 3),
    "glucose": _Lab("15074-8", "Glucose [Moles/volume] in Blood", "Glukose",
                    "mmol/L", "mmol/L", 1, 4.0, 6.0, 5.2, 0.5),
    "creatinine": _Lab("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "Kreatinin",
                       "umol/L", "µmol/L", 0, 45, 105, 75, 12),
    "egfr": _Lab("62238-1",
                 "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, "
                 "Plasma or Blood by Creatinine-based formula (CKD-EPI)", "eGFR",
                 "mL/min/{1.73_m2}", "mL/min/1,73 m²", 0, 60, None, 95, 12),
    "crp": _Lab("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "CRP",
                "mg/L", "mg/L", 0, None, 5, 2, 1.2),
    "potassium": _Lab("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "Kalium",
                      "mmol/L", "mmol/L", 1, 3.5, 4.4, 4.0, 0.25),
    "sodium": _Lab("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "Natrium",
                   "mmol/L", "mmol/L", 0, 137, 145, 141, 1.8),
    "cholesterol": _Lab("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "Kolesterol",
                        "mmol/L", "mmol/L", 1, 2.9, 6.1, 5.1, 0.8),
    "ldl": _Lab("22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma",
                "LDL-kolesterol", "mmol/L", "mmol/L", 1, 1.2, 4.3, 3.0, 0.7),
    "tsh": _Lab("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "TSH",
                "m[IU]/L", "mIE/L", 1, 0.4, 4.0, 1.8, 0.6),
    "leukocytes": _Lab("6690-2", "Leukocytes [#/volume] in Blood by Automated count",
                       "Leukocytter", "10*9/L", "10^9/L", 1, 3.5, 10.0, 6.5, 1.4),
    "platelets": _Lab("777-3", "Platelets [#/volume] in Blood by Automated count",
                      "Trombocytter", "10*9/L", "10^9/L", 0, 145, 390, 260, 45),
}
_ROUTINE_LABS = ("hb", "crp", "creatinine", "egfr", "glucose", "cholesterol", "leukocytes",
                 "platelets", "sodium", "potassium", "tsh", "hba1c", "ldl")
# fmt: on
_CHILD_LABS = ("hb", "crp", "leukocytes", "platelets")

# Lab values shifted by a diagnosis: lab -> {icd10: (mean, sd)}
_LAB_SHIFTS = {
    "hba1c": {"E119": (55, 9)},
    "glucose": {"E119": (8.4, 1.8)},
    "cholesterol": {"E785": (6.6, 0.8)},
    "ldl": {"E785": (4.5, 0.6)},
    "tsh": {"E039": (4.6, 1.8)},
}

_VITAL_CODES = {
    "hr": ("8867-4", "Heart rate", "Puls", "/min", "/min"),
    "rr": ("9279-1", "Respiratory rate", "Respirasjonsfrekvens", "/min", "/min"),
    "temp": ("8310-5", "Body temperature", "Kroppstemperatur", "Cel", "°C"),
    "weight": ("29463-7", "Body weight", "Kroppsvekt", "kg", "kg"),
    "height": ("8302-2", "Body height", "Kroppshøyde", "cm", "cm"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "KMI", "kg/m2", "kg/m2"),
}
_INTERPRETATION = _TERMINOLOGY + "v3-ObservationInterpretation"
_INTERPRETATIONS = {"H": "High", "L": "Low", "N": "Normal"}
_CATEGORIES = {"vital-signs": "Vital Signs", "laboratory": "Laboratory"}
_CONDITION_CATEGORY = {
    True: ("problem-list-item", "Problem List Item"),
    False: ("encounter-diagnosis", "Encounter Diagnosis"),
}
_ENCOUNTER_TYPES = (
    ("185349003", "Encounter for check up", "Kontroll"),
    ("185347001", "Encounter for problem", "Konsultasjon"),
    ("390906007", "Follow-up encounter", "Oppfølging"),
)
# Share of adult height reached by age (piecewise linear between these points).
_GROWTH = ((0, 0.30), (1, 0.43), (2, 0.50), (5, 0.63), (10, 0.80), (14, 0.93), (17, 1.0))


def _height_fraction(age: float) -> float:
    for (a0, f0), (a1, f1) in itertools.pairwise(_GROWTH):
        if age < a1:
            return f0 + (f1 - f0) * (max(age, a0) - a0) / (a1 - a0)
    return 1.0


@dataclass(slots=True)
class _Visit:
    urn: str
    start: datetime
    end: datetime
    practitioner: _Practitioner
    org: _Org
    age: float
    kind: tuple[str, str, str]
    diagnoses: list[str]  # Condition urns diagnosed here
    fever: bool = False
    labs: tuple[str, ...] = ()


def _allocate(rng: random.Random, resources: int) -> tuple[int, int, int]:
    """(encounters, condition target, allergy target) for a bundle of ``resources`` entries."""
    rest = resources - 1
    if rest <= 0:
        return 0, 0, 0
    encounters = min(rest, max(1, round(rest / 9)))
    conditions = rng.randint(1, max(1, min(6, 1 + rest // 12)))
    allergies = rng.choice((0, 0, 0, 1, 1, 2)) if rest >= 10 else 0
    return encounters, conditions, allergies


class _PatientBuilder:
    """Builds one patient's transaction Bundle; all randomness from one seeded Random."""

    def __init__(self, index: int, seed: int, resources: int, directory: _Directory) -> None:
        self.rng = random.Random(f"samhandling.synth/patient/{seed}/{index}")
        self.resources = resources
        self.directory = directory
        self.birth, self.female, self.fnr = _identity(index, seed)
        self.entries: list[dict[str, Any]] = []
        self.patient_urn = _uuid(self.rng)
        self.gp = directory.practitioners[self.rng.choice(directory.doctors)]
        self.gp_org = directory.orgs[self.gp.org]

    def _post(self, urn: str, resource: dict[str, Any]) -> None:
        self.entries.append(
            {
                "fullUrl": urn,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )

    # -- resources ------------------------------------------------------------------------

    def patient(self) -> None:
        rng = self.rng
        given = [rng.choice(_FEMALE_NAMES if self.female else _MALE_NAMES)]
        if rng.random() < 0.2:
            second = rng.choice(_FEMALE_NAMES if self.female else _MALE_NAMES)
            if second != given[0]:
                given.append(second)
        family = rng.choice(_SURNAMES)
        if rng.random() < 0.85:
            muni = self.gp_org.municipality
        else:
            muni = rng.choices(_MUNICIPALITIES, weights=_MUNICIPALITY_WEIGHTS)[0]
        letter = rng.choice("ABC") if rng.random() < 0.1 else ""
        line = f"{rng.choice(_STREETS)} {rng.randint(1, 120)}{letter}"
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "meta": _meta(),
            "identifier": [{"use": "official", "system": FNR_SYSTEM, "value": self.fnr}],
            "active": True,
            "name": [{"use": "official", "family": family, "given": given}],
        }
        age = _age(self.birth, REFERENCE_DATE)
        telecom = []
        if age >= 12:
            telecom.append({"system": "phone", "value": _phone(rng, True), "use": "mobile"})
        if age >= 18 and rng.random() < 0.6:
            telecom.append(
                {
                    "system": "email",
                    "value": _email(given[0], family, rng.randint(1, 99)),
                    "use": "home",
                }
            )
        if telecom:
            resource["telecom"] = telecom
        resource["gender"] = "female" if self.female else "male"
        resource["birthDate"] = self.birth.isoformat()
        resource["address"] = [_address(line, rng.choice(muni.postal), muni, "home")]
        resource["generalPractitioner"] = [_ref(f"Practitioner/{self.gp.id}", self.gp.display)]
        resource["managingOrganization"] = _ref(f"Organization/{self.gp_org.id}", self.gp_org.name)
        self._post(self.patient_urn, resource)

    def visits(self, count: int) -> list[_Visit]:
        rng = self.rng
        first = max(self.birth + timedelta(days=1), REFERENCE_DATE - timedelta(days=3652))
        last = REFERENCE_DATE - timedelta(days=30)
        span = (last - first).days + 1
        days = sorted(rng.randrange(span) for _ in range(count))
        directory = self.directory
        visits = []
        for offset in days:
            day = first + timedelta(days=offset)
            if day.weekday() >= 5:  # GP offices are closed at weekends
                day -= timedelta(days=day.weekday() - 4)
                day = max(day, first)
            start = datetime(day.year, day.month, day.day, 8) + timedelta(
                minutes=15 * rng.randrange(30)
            )
            roll = rng.random()
            if roll < 0.8:
                practitioner = self.gp
            elif roll < 0.95:
                colleagues = [
                    p
                    for i in directory.doctors
                    if (p := directory.practitioners[i]).org == self.gp.org
                ]
                practitioner = rng.choice(colleagues)
            else:
                practitioner = directory.practitioners[rng.choice(directory.doctors)]
            visits.append(
                _Visit(
                    urn=_uuid(rng),
                    start=start,
                    end=start + timedelta(minutes=rng.choice((15, 20, 20, 30, 45))),
                    practitioner=practitioner,
                    org=directory.orgs[practitioner.org],
                    age=(day - self.birth).days / 365.25,
                    kind=rng.choice(_ENCOUNTER_TYPES),
                    diagnoses=[],
                )
            )
        return visits

    def encounter(self, visit: _Visit) -> None:
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "meta": _meta(),
            "status": "finished",
            "class": _coding(_TERMINOLOGY + "v3-ActCode", "AMB", "ambulatory"),
            "type": [_concept(SNOMED, *visit.kind)],
            "subject": {"reference": self.patient_urn},
            "participant": [
                {
                    "type": [
                        _concept(_TERMINOLOGY + "v3-ParticipationType", "PPRF", "primary performer")
                    ],
                    "individual": _ref(
                        f"Practitioner/{visit.practitioner.id}", visit.practitioner.display
                    ),
                }
            ],
            "period": {"start": _oslo(visit.start), "end": _oslo(visit.end)},
        }
        if visit.diagnoses:
            resource["diagnosis"] = [
                {"condition": {"reference": urn}, "rank": rank}
                for rank, urn in enumerate(visit.diagnoses, 1)
            ]
        resource["location"] = [{"location": _ref(f"Location/{visit.org.location_id}")}]
        resource["serviceProvider"] = _ref(f"Organization/{visit.org.id}", visit.org.name)
        self._post(visit.urn, resource)

    def conditions(
        self, visits: list[_Visit], target: int, budget: int
    ) -> list[tuple[_Diagnosis, _Visit, str]]:
        rng = self.rng
        candidates = []
        for dx in _DIAGNOSES:
            eligible = [v for v in visits if dx.min_age <= v.age < dx.max_age + 1]
            if eligible:
                candidates.append((dx, eligible))
        chosen: list[tuple[_Diagnosis, _Visit, str]] = []
        while candidates and len(chosen) < min(target, budget):
            i = rng.choices(range(len(candidates)), weights=[c[0].weight for c in candidates])[0]
            dx, eligible = candidates.pop(i)
            visit = rng.choice(eligible)
            urn = _uuid(rng)
            visit.diagnoses.append(urn)
            visit.fever = visit.fever or dx.fever
            visit.labs += dx.labs
            chosen.append((dx, visit, urn))
            for v in visits:  # chronic conditions are followed up with their labs
                if dx.chronic and v.start > visit.start and rng.random() < 0.5:
                    v.labs += dx.labs
            status = "active" if dx.chronic else "resolved"
            resource: dict[str, Any] = {
                "resourceType": "Condition",
                "meta": _meta(),
                "clinicalStatus": _concept(
                    _TERMINOLOGY + "condition-clinical", status, status.capitalize()
                ),
                "verificationStatus": _concept(
                    _TERMINOLOGY + "condition-ver-status", "confirmed", "Confirmed"
                ),
                "category": [
                    _concept(_TERMINOLOGY + "condition-category", *_CONDITION_CATEGORY[dx.chronic])
                ],
                "code": _concept(ICD10_SYSTEM, dx.code, dx.display, dx.display),
                "subject": {"reference": self.patient_urn},
                "encounter": {"reference": visit.urn},
            }
            if dx.chronic and rng.random() < 0.5:
                earliest = max(
                    self.birth.toordinal() + int(dx.min_age * 365.25),
                    visit.start.toordinal() - 15 * 365,
                )
                onset = date.fromordinal(
                    rng.randint(min(earliest, visit.start.toordinal()), visit.start.toordinal())
                )
                resource["onsetDateTime"] = onset.isoformat()
            elif dx.chronic:
                resource["onsetDateTime"] = _oslo(visit.start)
            else:
                onset = visit.start - timedelta(days=rng.randint(0, 4))
                resource["onsetDateTime"] = max(onset.date(), self.birth).isoformat()
                abatement = visit.start + timedelta(days=rng.randint(5, 21))
                resource["abatementDateTime"] = abatement.date().isoformat()
            resource["recordedDate"] = _oslo(visit.end)
            resource["recorder"] = _ref(
                f"Practitioner/{visit.practitioner.id}", visit.practitioner.display
            )
            self._post(urn, resource)
        return chosen

    def allergies(self, visits: list[_Visit], count: int) -> set[str]:
        """Post ``count`` allergies; returns the ATC codes the patient must not be given."""
        rng = self.rng
        avoid: set[str] = set()
        for allergen in rng.sample(_ALLERGENS, min(count, len(_ALLERGENS))):
            category, system, code, display, text, criticality, reactions = allergen
            visit = rng.choice(visits)
            reaction = _REACTIONS[rng.choice(reactions)]
            severe = reaction[0] == "39579001"
            if system == ATC:
                avoid.add(code)
            self._post(
                _uuid(rng),
                {
                    "resourceType": "AllergyIntolerance",
                    "meta": _meta(),
                    "clinicalStatus": _concept(
                        _TERMINOLOGY + "allergyintolerance-clinical", "active", "Active"
                    ),
                    "verificationStatus": _concept(
                        _TERMINOLOGY + "allergyintolerance-verification", "confirmed", "Confirmed"
                    ),
                    "type": "allergy",
                    "category": [category],
                    "criticality": "high" if severe else criticality,
                    "code": _concept(system, code, display, text),
                    "patient": {"reference": self.patient_urn},
                    "encounter": {"reference": visit.urn},
                    "recordedDate": _oslo(visit.end),
                    "recorder": _ref(
                        f"Practitioner/{visit.practitioner.id}", visit.practitioner.display
                    ),
                    "reaction": [
                        {
                            "manifestation": [_concept(SNOMED, *reaction)],
                            "severity": "severe" if severe else rng.choice(("mild", "moderate")),
                        }
                    ],
                },
            )
        return avoid

    def medications(
        self, diagnoses: list[tuple[_Diagnosis, _Visit, str]], budget: int, avoid: set[str]
    ) -> int:
        rng = self.rng
        plans: list[tuple[_Drug, _Diagnosis, _Visit, str]] = []
        for dx, visit, urn in diagnoses:
            drugs = [atc for atc in dx.drugs if atc not in avoid]
            if not drugs:
                continue
            picks = [drugs[0] if rng.random() < 0.6 else rng.choice(drugs)]
            if dx.chronic and len(drugs) > 1 and rng.random() < 0.3:
                picks.append(next(d for d in drugs if d != picks[0]))
            table = _CHILD_DRUGS if visit.age < 12 else {}
            plans.extend((table.get(atc) or _DRUGS[atc], dx, visit, urn) for atc in picks)
        for drug, dx, visit, urn in plans[:budget]:
            requester = visit.practitioner
            resource: dict[str, Any] = {
                "resourceType": "MedicationRequest",
                "meta": _meta(),
                "status": "active" if dx.chronic else "completed",
                "intent": "order",
                "category": [
                    _concept(_TERMINOLOGY + "medicationrequest-category", "community", "Community")
                ],
                "medicationCodeableConcept": _concept(ATC, drug.atc, drug.name, drug.text),
                "subject": {"reference": self.patient_urn},
                "encounter": {"reference": visit.urn},
                "authoredOn": _oslo(visit.end),
                "requester": _ref(f"PractitionerRole/{requester.role_id}", requester.display),
                "reasonReference": [{"reference": urn}],
                "dosageInstruction": [
                    {
                        "sequence": 1,
                        "text": drug.dosage,
                        "timing": {
                            "repeat": {"frequency": drug.per_day, "period": 1, "periodUnit": "d"}
                        },
                        "asNeededBoolean": drug.as_needed,
                        "route": _concept(SNOMED, *drug.route),
                        "doseAndRate": [{"doseQuantity": {"value": drug.dose, "unit": drug.unit}}],
                    }
                ],
            }
            if dx.chronic:
                start = visit.end.date()
                resource["dispenseRequest"] = {
                    "validityPeriod": {
                        "start": start.isoformat(),
                        "end": (start + timedelta(days=365)).isoformat(),
                    }
                }
            self._post(_uuid(rng), resource)
        return min(len(plans), budget)

    def observations(self, visits: list[_Visit], count: int, conditions: set[str]) -> None:
        rng = self.rng
        # Per-patient baselines.
        adult_height = rng.gauss(167, 6) if self.female else rng.gauss(180, 7)
        bmi_base = rng.gauss(26, 3.5) + (3 if "E119" in conditions else 0)
        plans: list[list[str]] = []
        for visit in visits:
            kinds = ["bp", "hr", "weight"] if visit.age >= 3 else ["weight", "hr"]
            if visit.age < 18 or visit is visits[0]:
                kinds.append("height")
            if visit.age >= 18:
                kinds.append("bmi")
            if visit.fever:
                kinds += ["temp", "spo2", "rr"]
            else:
                kinds += ["spo2", "temp"] if rng.random() < 0.5 else ["spo2"]
            routine = _ROUTINE_LABS if visit.age >= 16 else _CHILD_LABS
            labs = list(dict.fromkeys(visit.labs))
            extra = [lab for lab in routine if lab not in labs]
            rng.shuffle(extra)
            plans.append(kinds + labs + extra)
        n = len(visits)
        for i in range(count):
            visit, plan = visits[i % n], plans[i % n]
            repeat, position = divmod(i // n, len(plan))
            kind = plan[position]
            when = visit.start + timedelta(minutes=5 + 10 * repeat + position)
            if kind in _LABS:
                self._lab(visit, kind, when, conditions)
            else:
                self._vital(visit, kind, when, adult_height, bmi_base, conditions)

    def _observation(
        self,
        visit: _Visit,
        category: str,
        code: dict[str, Any],
        when: datetime,
        issued: datetime,
        performer: str,
    ) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "meta": _meta(),
            "status": "final",
            "category": [
                _concept(_TERMINOLOGY + "observation-category", category, _CATEGORIES[category])
            ],
            "code": code,
            "subject": {"reference": self.patient_urn},
            "encounter": {"reference": visit.urn},
            "effectiveDateTime": _oslo(when),
            "issued": _oslo(issued),
            "performer": [{"reference": performer}],
        }

    def _vital(
        self,
        visit: _Visit,
        kind: str,
        when: datetime,
        adult_height: float,
        bmi_base: float,
        conditions: set[str],
    ) -> None:
        rng, age = self.rng, visit.age
        height = adult_height * _height_fraction(age)
        bmi = bmi_base if age >= 18 else 15.5 + max(0.0, age - 6) * 0.35
        performer = f"Practitioner/{visit.practitioner.id}"
        if kind == "bp":
            if age < 13:
                systolic, diastolic = rng.gauss(102, 7), rng.gauss(62, 6)
            else:
                high = "I10" in conditions
                systolic = rng.gauss(132 if high else 120, 10) + max(0.0, age - 40) * 0.3
                diastolic = rng.gauss(84 if high else 76, 7)
            code = _concept(
                LOINC, "85354-9", "Blood pressure panel with all children optional", "Blodtrykk"
            )
            resource = self._observation(visit, "vital-signs", code, when, when, performer)
            resource["component"] = [
                {
                    "code": _concept(LOINC, "8480-6", "Systolic blood pressure"),
                    "valueQuantity": _quantity(round(systolic), "mmHg", "mm[Hg]"),
                },
                {
                    "code": _concept(LOINC, "8462-4", "Diastolic blood pressure"),
                    "valueQuantity": _quantity(
                        round(min(diastolic, systolic - 25)), "mmHg", "mm[Hg]"
                    ),
                },
            ]
            self._post(_uuid(rng), resource)
            return
        if kind == "spo2":
            code = {
                "coding": [
                    _coding(LOINC, "2708-6", "Oxygen saturation in Arterial blood"),
                    _coding(
                        LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"
                    ),
                ],
                "text": "Oksygenmetning",
            }
            low = 2.5 if "J449" in conditions else 0.0
            value = round(min(100.0, rng.gauss(97.5 - low, 1.2)))
            resource = self._observation(visit, "vital-signs", code, when, when, performer)
            resource["valueQuantity"] = _quantity(value, "%", "%")
            self._post(_uuid(rng), resource)
            return
        loinc, display, text, ucum, unit = _VITAL_CODES[kind]
        if kind == "hr":
            value: float = round(rng.gauss(125 if age < 1 else 95 if age < 10 else 72, 9))
        elif kind == "rr":
            value = round(rng.gauss(36 if age < 1 else 22 if age < 10 else 16, 2.5))
        elif kind == "temp":
            value = round(rng.uniform(37.9, 39.3) if visit.fever else rng.gauss(36.8, 0.3), 1)
        elif kind == "height":
            value = round(height, 1)
        elif kind == "weight":
            value = round(bmi * (height / 100) ** 2 * rng.gauss(1.0, 0.015), 1)
        else:  # bmi
            value = round(bmi * rng.gauss(1.0, 0.015), 1)
        resource = self._observation(
            visit, "vital-signs", _concept(LOINC, loinc, display, text), when, when, performer
        )
        resource["valueQuantity"] = _quantity(value, unit, ucum)
        self._post(_uuid(rng), resource)

    def _lab(self, visit: _Visit, key: str, when: datetime, conditions: set[str]) -> None:
        rng, lab = self.rng, _LABS[key]
        mean, sd = lab.mean, lab.sd
        for code, shifted in _LAB_SHIFTS.get(key, {}).items():
            if code in conditions:
                mean, sd = shifted
        if key == "crp":
            value = rng.uniform(25, 160) if visit.fever else math.exp(rng.gauss(0.5, 0.7))
        elif key == "leukocytes" and visit.fever:
            value = rng.gauss(12.5, 2.5)
        elif key == "egfr":
            value = min(130.0, rng.gauss(125 - 0.9 * visit.age, 10))
        elif key == "hb" and self.female:
            value = rng.gauss(13.5, 0.9)
        else:
            value = rng.gauss(mean, sd)
        floor = 10.0**-lab.decimals
        value = max(floor, round(value, lab.decimals))
        if lab.decimals == 0:
            value = int(value)
        issued = when + timedelta(hours=rng.randint(1, 6), minutes=rng.randrange(60))
        resource = self._observation(
            visit,
            "laboratory",
            _concept(LOINC, lab.loinc, lab.display, lab.text),
            when,
            issued,
            f"Organization/{visit.org.id}",
        )
        resource["valueQuantity"] = _quantity(value, lab.unit, lab.ucum)
        if lab.high is not None and value > lab.high:
            flag = "H"
        elif lab.low is not None and value < lab.low:
            flag = "L"
        else:
            flag = "N"
        resource["interpretation"] = [_concept(_INTERPRETATION, flag, _INTERPRETATIONS[flag])]
        reference: dict[str, Any] = {}
        if lab.low is not None:
            reference["low"] = _quantity(lab.low, lab.unit, lab.ucum)
        if lab.high is not None:
            reference["high"] = _quantity(lab.high, lab.unit, lab.ucum)
        resource["referenceRange"] = [reference]
        self._post(_uuid(rng), resource)

    # -- assembly -------------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        n_enc, n_cond, n_allergy = _allocate(self.rng, self.resources)
        self.patient()
        visits = self.visits(n_enc)
        budget = self.resources - 1 - n_enc
        # Conditions decide which labs the visits get, so plan them before the encounters,
        # but emit the encounters first (they are referenced by everything else).
        marker = len(self.entries)
        diagnoses = self.conditions(visits, n_cond, budget)
        condition_entries = self.entries[marker:]
        del self.entries[marker:]
        for visit in visits:
            self.encounter(visit)
        self.entries.extend(condition_entries)
        budget -= len(diagnoses)
        n_allergy = min(n_allergy, budget)
        avoid = self.allergies(visits, n_allergy) if visits else set()
        budget -= n_allergy
        budget -= self.medications(diagnoses, budget // 3 if budget > 6 else budget, avoid)
        if visits:
            self.observations(visits, budget, {dx.code for dx, _, _ in diagnoses})
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


def patient_bundle(
    index: int,
    seed: int = 0,
    resources: int = 50,
    organizations: int = 5,
    practitioners_per_org: int = 4,
) -> dict[str, Any]:
    """A transaction Bundle of exactly ``resources`` POST entries for patient ``index``.

    Patient (fødselsnummer, name, address with kommunenummer, GP), then Encounters,
    Conditions (ICD-10), AllergyIntolerances, MedicationRequests (ATC) and Observations
    (LOINC vital signs and lab results, UCUM units). Entries reference each other by their
    ``urn:uuid:`` fullUrls and the care providers of ``care_providers_bundle(seed,
    organizations, practitioners_per_org)`` by relative references. Deterministic in all
    arguments; distinct indices of one seed get distinct fødselsnumre.
    """
    _check(seed, organizations, practitioners_per_org)
    if not 0 <= index < MAX_PATIENTS_PER_SEED:
        raise ValueError(f"index must be in [0, {MAX_PATIENTS_PER_SEED})")
    if resources < 1:
        raise ValueError("resources must be >= 1")
    directory = _directory(seed, organizations, practitioners_per_org)
    return _PatientBuilder(index, seed, resources, directory).build()


def patient_bundles(
    count: int,
    seed: int = 0,
    resources: int = 50,
    *,
    start: int = 0,
    organizations: int = 5,
    practitioners_per_org: int = 4,
) -> Iterator[dict[str, Any]]:
    """Bundles for patients ``start`` .. ``start + count - 1``; see :func:`patient_bundle`."""
    for index in range(start, start + count):
        yield patient_bundle(index, seed, resources, organizations, practitioners_per_org)

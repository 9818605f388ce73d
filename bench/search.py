#!/usr/bin/env python
"""FHIR search benchmark for the samhandling server.

    python bench/search.py [--backend sqlite|postgresql|both] [--patients 1000,10000]
                           [--resources-per-patient 50] [--duration 10] [--runs 3]
                           [--connections 16] [--workers 1] [--check] [--reload]
                           [--no-keep-data] [--seed 0] [--profile]

For each backend and each patient count it starts ``samhandling serve`` (bench/run.py's
``Server``, with ``SAMHANDLING_UNPROTECTED_API=1``: the FHIR API without token checks, so
the numbers are the search engine's) on a database holding the synthetic care providers
(``care_providers_bundle``: 5 Organizations, 5 Locations, 20 Practitioners, 20
PractitionerRoles) and ``--patients`` synthetic patient transaction Bundles of
``--resources-per-patient`` resources each (``patient_bundle``; about 76% Observations,
10% Encounters, a Patient, Conditions, AllergyIntolerances, MedicationRequests). The
Bundles are generated once into bench/run.py's cache (bench/results/cache) and POSTed over
several concurrent connections; progress and the load rate (resources/s) are printed.

Kept data. Loading 10,000 patients (500,000 resources) takes minutes, so the loaded database
is kept between invocations (``--keep-data``, the default): the SQLite data directory
``bench/results/data/search-<key>`` and, for PostgreSQL, the database
``samhandling_search_p<patients>_r<resources>_s<seed>_<hash>`` (its name is in the directory's
``dataset.json``). The key is (backend, patients, resources per patient, seed, fingerprint of
src/samhandling/synth, fingerprint of the backend's SQL migrations), so new synthetic data or
a new schema (e.g. search index tables) loads afresh, and kept data of an older fingerprint is
deleted (PostgreSQL database dropped). ``--reload`` forces a fresh load; ``--no-keep-data``
deletes the data when done. If the server's indexing changes without a new migration, use
``--reload``: data loaded before would lack the new index entries.

Query values are read from the stored resources themselves (the ``resource`` table: type, id,
content; never the search index tables), so every query has matches and its expected result
size is known. Seven query classes, each a file of concrete GET paths (``search-<class>.tsv``
in the data directory: path, expected matches, expected includes), built from real values
with a seeded shuffle (at most 20,000 paths per class):

* ``token``: ``Observation?code=http://loinc.org|<code>&_count=20``, one path per LOINC code
  present in Observation.code;
* ``date``: ``Observation?subject=Patient/<id>&date=ge<Y>-01-01&date=lt<Y+1>-01-01``, per
  patient one year (drawn at random) in which that patient has observations;
* ``reference``: ``Observation?subject=Patient/<id>``, one per patient;
* ``string``: ``Patient?family=<family>&given=<first given>`` of each patient (string search
  is prefix and case-insensitive, so e.g. "Berg" also finds "Berge": the expected count
  counts that);
* ``chain``: ``Observation?encounter:Encounter.subject:Patient.identifier=
  urn:oid:2.16.578.1.12.4.1.4.1|<fødselsnummer>``, one per patient;
* ``has``: ``Practitioner?_has:Encounter:participant:subject=Patient/<id>`` (the synthetic
  Encounters name their practitioner in participant.individual; 1-3 per patient);
* ``include``: ``MedicationRequest?subject=Patient/<id>&_include=MedicationRequest:requester``
  for patients with MedicationRequests (the synthetic requester is a PractitionerRole);

and ``mix``: the seven interleaved, each request picking a class uniformly, then a path
uniformly. ``|`` and non-ASCII letters are percent-encoded as an HTTP client would.

Before timing, one example of every class is requested and checked (status, searchset,
number of match/include entries, total, against the counts expected from the stored data);
``--check`` stops after that and exits non-zero if a class answers other than 200, returns
no entries, or returns a count different from the stored data (string search only warns:
accent folding of ø/æ/å is the server's choice).

Timing: for each class and the mix, a 3 s warm-up and ``--runs`` runs of wrk (2 threads,
``--connections``, ``--duration`` s, bench/lua/search.lua) via bench/run.py's ``measure``:
requests/s, latency percentiles (p50, p95, p99 from wrk's histogram in a Lua done() hook),
errors (any status other than 200, plus socket errors, e.g. wrk's 15 s timeout) and ``empty``
(200s without entries). Before the warm-up and each run the benchmark waits (up to
``--settle-wait`` s) until the server and PostgreSQL are idle: wrk stops with requests in
flight, and slow searches would otherwise burden the next run. Kept data is brought up to
date with ``samhandling reindex`` (queued reindex jobs run to the end) before it is served.
The table shows medians over the runs, the targets for the mix (SQLite >= 1000 req/s and
p95 <= 25 ms; PostgreSQL >= 600 req/s and p95 <= 40 ms) and, per class, the scaling ratio
p50(largest)/p50(smallest patient count) with its target <= 1.3. Everything is also written
as JSON to bench/results/search-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import unicodedata
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # bench/run.py: servers, Bundle cache, loading, wrk
from samhandling.platform.identifiers import FNR_SYSTEM

CLASSES = ("token", "date", "reference", "string", "chain", "has", "include")
MATCH_TYPE = {
    "token": "Observation",
    "date": "Observation",
    "reference": "Observation",
    "string": "Patient",
    "chain": "Observation",
    "has": "Practitioner",
    "include": "MedicationRequest",
}
INCLUDE_TYPE = "PractitionerRole"  # MedicationRequest.requester in the synthetic data
TOKEN_COUNT = 20  # _count of the token class
MAX_PATHS = 20_000  # per class
LOINC = "http://loinc.org"
TARGETS = {"sqlite": (1000, 25.0), "postgresql": (600, 40.0)}  # mix: req/s >=, p95 ms <=
SCALING_TARGET = 1.3  # p50(largest) / p50(smallest patient count) <=
WRK_THREADS = 2
VALUES_VERSION = 2  # bump when the query classes change: value files are rebuilt
DATA = bench.RESULTS / "data"
MIGRATIONS = bench.ROOT / "src" / "samhandling" / "infrastructure" / "migrations"
SCAN_TYPES = ("Patient", "Encounter", "Observation", "MedicationRequest")


# ---------------------------------------------------------------------------------------
# kept data sets


def schema_fingerprint(backend: str) -> str:
    digest = hashlib.sha256()
    for path in sorted((MIGRATIONS / backend).glob("*.sql")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


@dataclass
class DataSet:
    """Where one (backend, patients, resources per patient, seed) data set lives."""

    backend: str
    patients: int
    resources: int
    seed: int
    admin_url: str
    key: str = ""
    data_dir: Path = field(default_factory=Path)
    database: str | None = None  # PostgreSQL database name
    database_url: str | None = None

    def __post_init__(self) -> None:
        fingerprint = f"{bench.synth_fingerprint()}-{schema_fingerprint(self.backend)}"
        self.key = f"{self.backend}-p{self.patients}-r{self.resources}-s{self.seed}-{fingerprint}"
        self.data_dir = DATA / f"search-{self.key}"
        if self.backend == "postgresql":
            short = hashlib.sha256(self.key.encode()).hexdigest()[:8]
            self.database = (
                f"samhandling_search_p{self.patients}_r{self.resources}_s{self.seed}_{short}"
            )
            self.database_url = bench.pg_url(self.admin_url, self.database)

    @property
    def marker(self) -> Path:
        return self.data_dir / "dataset.json"

    @property
    def fingerprint_suffix(self) -> str:
        return "-" + self.key.split("-", 4)[4]

    def stored(self) -> dict[str, int]:
        """Current resources by type, straight from the resource table."""
        deleted = "0" if self.backend == "sqlite" else "false"
        rows = bench.stored_rows(
            self.backend,
            self.data_dir,
            self.database_url,
            f"SELECT type, count(*) FROM resource WHERE deleted = {deleted} GROUP BY type",
        )
        return {t: int(n) for t, n in sorted(rows)}

    def reusable(self) -> dict[str, Any] | None:
        """The marker of a complete earlier load whose database still holds what it loaded."""
        if not self.marker.exists():
            return None
        try:
            marker = json.loads(self.marker.read_text())
            if marker.get("key") != self.key:
                return None
            if self.backend == "sqlite" and not (self.data_dir / "samhandling.db").exists():
                return None
            stored = self.stored()
        except Exception as exc:  # a dropped database, a broken file: load again
            bench.log(f"kept data {self.data_dir.name} not usable ({exc}); loading afresh")
            return None
        if sum(stored.values()) != marker["stored"]["resources"]:
            bench.log(f"kept data {self.data_dir.name} changed since it was loaded; reloading")
            return None
        return marker

    def remove(self) -> None:
        if self.database:
            asyncio.run(bench.pg_drop(self.admin_url, self.database))
        shutil.rmtree(self.data_dir, ignore_errors=True)


def remove_stale(current: DataSet) -> None:
    """Kept data of this backend from another synth or schema fingerprint: no longer usable."""
    for folder in DATA.glob(f"search-{current.backend}-*"):
        if not folder.is_dir() or folder.name.endswith(current.fingerprint_suffix):
            continue
        database = None
        with contextlib.suppress(OSError, ValueError, KeyError):
            database = json.loads((folder / "dataset.json").read_text())["database"]
        bench.log(
            f"removing stale kept data {folder.name}" + (f" ({database})" if database else "")
        )
        if database:
            with contextlib.suppress(Exception):
                asyncio.run(bench.pg_drop(current.admin_url, database))
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# loading


def load(port: int, cache: bench.BundleCache, dataset: DataSet, concurrency: int) -> dict[str, Any]:
    """Care providers, then patient Bundles 0 .. patients-1; progress every 10 s."""
    started = time.perf_counter()
    cache.ensure(list(range(dataset.patients)))
    generated = time.perf_counter() - started
    base = f"http://127.0.0.1:{port}/fhir"
    paths = [cache.path(i) for i in range(dataset.patients)]
    expected = sum(cache.sizes[i] for i in range(dataset.patients))
    name = f"{dataset.backend} {dataset.patients:,} patients"
    bench.log(
        f"{name}: loading care providers and {len(paths):,} patient Bundles "
        f"({expected:,} resources, {concurrency} concurrent connections)"
    )
    started = time.perf_counter()
    providers, _ = asyncio.run(bench._post_bundles(base, [cache.care_providers()], 1))
    last = [started]

    def progress(done: int, written: int) -> None:
        now = time.perf_counter()
        if now - last[0] < 10 and done < len(paths):
            return
        last[0] = now
        rate = written / (now - started)
        eta = (expected - written) / rate if rate else 0
        bench.log(
            f"{name}: {done:,}/{len(paths):,} Bundles, {written:,} resources, "
            f"{rate:,.0f} resources/s, ETA {eta:,.0f} s"
        )

    written, bundles = asyncio.run(bench._post_bundles(base, paths, concurrency, progress))
    seconds = time.perf_counter() - started
    written += providers
    return {
        "bundles": bundles,
        "resources_written": written,
        "seconds": round(seconds, 1),
        "resources_per_s": round(written / seconds),
        "concurrency": concurrency,
        "generation_seconds": round(generated, 1),
        "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------------------------------
# values: what is stored, read from the resource table


def scan(dataset: DataSet, visit: Callable[[str, str, bytes], None]) -> None:
    """Every current resource of SCAN_TYPES, streamed: visit(type, id, content)."""
    types = ", ".join(f"'{t}'" for t in SCAN_TYPES)
    if dataset.backend == "sqlite":
        import sqlite3

        sql = f"SELECT type, id, content FROM resource WHERE deleted = 0 AND type IN ({types})"
        conn = sqlite3.connect(f"file:{dataset.data_dir / 'samhandling.db'}?mode=ro", uri=True)
        try:
            for type_, id_, content in conn.execute(sql):
                visit(type_, id_, content)
        finally:
            conn.close()
        return
    sql = f"SELECT type, id, content FROM resource WHERE NOT deleted AND type IN ({types})"

    async def stream() -> None:
        import asyncpg

        conn = await asyncpg.connect(dataset.database_url)
        try:
            async with conn.transaction():
                async for row in conn.cursor(sql, prefetch=5000):
                    visit(row[0], row[1], row[2])
        finally:
            await conn.close()

    asyncio.run(stream())


def _target(reference: dict[str, Any] | None) -> tuple[str, str] | None:
    """("Patient", "abc") of {"reference": "Patient/abc"} (relative or absolute)."""
    text = (reference or {}).get("reference") or ""
    parts = text.split("/")
    if len(parts) < 2 or "_history" in parts:
        return None
    return parts[-2], parts[-1]


@dataclass
class Facts:
    """What the query classes need to know about the stored data."""

    patients: dict[str, tuple[str | None, list[str], list[str]]] = field(default_factory=dict)
    observations: Counter[str] = field(default_factory=Counter)  # patient id -> count
    years: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    by_encounter: Counter[str] = field(default_factory=Counter)  # encounter id -> observations
    encounter_subject: dict[str, str] = field(default_factory=dict)
    practitioners: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    loinc: Counter[str] = field(default_factory=Counter)  # code -> observations
    med_requests: Counter[str] = field(default_factory=Counter)
    requesters: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    scanned: Counter[str] = field(default_factory=Counter)

    def visit(self, type_: str, id_: str, content: bytes) -> None:
        self.scanned[type_] += 1
        resource = orjson.loads(content)
        if type_ == "Patient":
            fnr = next(
                (
                    i.get("value")
                    for i in resource.get("identifier", [])
                    if i.get("system") == FNR_SYSTEM
                ),
                None,
            )
            names = resource.get("name", [])
            families = [n["family"] for n in names if n.get("family")]
            givens = [g for n in names for g in n.get("given", [])]
            self.patients[id_] = (fnr, families, givens)
        elif type_ == "Encounter":
            subject = _target(resource.get("subject"))
            if subject and subject[0] == "Patient":
                self.encounter_subject[id_] = subject[1]
                for participant in resource.get("participant", []):
                    who = _target(participant.get("individual"))
                    if who and who[0] == "Practitioner":
                        self.practitioners[subject[1]].add(who[1])
        elif type_ == "Observation":
            subject = _target(resource.get("subject"))
            if subject and subject[0] == "Patient":
                self.observations[subject[1]] += 1
                effective = resource.get("effectiveDateTime")
                if effective:
                    self.years[subject[1]][int(effective[:4])] += 1
            encounter = _target(resource.get("encounter"))
            if encounter and encounter[0] == "Encounter":
                self.by_encounter[encounter[1]] += 1
            codes = {
                c["code"]
                for c in resource.get("code", {}).get("coding", [])
                if c.get("system") == LOINC and c.get("code")
            }
            for code in codes:
                self.loinc[code] += 1
        elif type_ == "MedicationRequest":
            subject = _target(resource.get("subject"))
            if subject and subject[0] == "Patient":
                self.med_requests[subject[1]] += 1
                requester = _target(resource.get("requester"))
                if requester:
                    self.requesters[subject[1]].add("/".join(requester))


def _fold(text: str) -> str:
    """Case- and accent-insensitive form (NFKD without combining marks, casefolded)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


Query = tuple[str, int, int]  # path, expected matches, expected includes


def build_queries(facts: Facts, seed: int) -> dict[str, list[Query]]:
    rng = random.Random(f"bench.search/{seed}")
    # In fødselsnummer order (the same in every load, unlike server-assigned ids), shuffled:
    # the same patients, years and first examples on every backend.
    patients = sorted(facts.patients, key=lambda pid: (facts.patients[pid][0] or "", pid))
    rng.shuffle(patients)
    patients = patients[:MAX_PATHS]
    out: dict[str, list[Query]] = {c: [] for c in CLASSES}

    for code in sorted(facts.loinc):
        value = quote(f"{LOINC}|{code}", safe=":/")
        out["token"].append(
            (f"/fhir/Observation?code={value}&_count={TOKEN_COUNT}", facts.loinc[code], 0)
        )
    rng.shuffle(out["token"])

    encounters_of: dict[str, list[str]] = defaultdict(list)
    for encounter, patient in facts.encounter_subject.items():
        encounters_of[patient].append(encounter)
    # string search: prefix match on any family / any given, case and accent folded
    by_family: dict[str, list[list[str]]] = defaultdict(list)
    for _, families, givens in facts.patients.values():
        folded_givens = [_fold(g) for g in givens]
        for family in {_fold(f) for f in families}:
            by_family[family].append(folded_givens)

    def name_matches(family: str, given: str) -> int:
        f, g = _fold(family), _fold(given)
        return sum(
            any(x.startswith(g) for x in givens)
            for stored, lists in by_family.items()
            if stored.startswith(f)
            for givens in lists
        )

    for pid in patients:
        ref = quote(f"Patient/{pid}", safe="/")
        fnr, families, givens = facts.patients[pid]
        count = facts.observations[pid]
        if count:
            out["reference"].append((f"/fhir/Observation?subject={ref}", count, 0))
            year = rng.choice(sorted(facts.years[pid]))
            out["date"].append(
                (
                    f"/fhir/Observation?subject={ref}&date=ge{year}-01-01&date=lt{year + 1}-01-01",
                    facts.years[pid][year],
                    0,
                )
            )
        if families and givens:
            family, given = families[0], givens[0]
            out["string"].append(
                (
                    f"/fhir/Patient?family={quote(family, safe='')}&given={quote(given, safe='')}",
                    name_matches(family, given),
                    0,
                )
            )
        chained = sum(facts.by_encounter[e] for e in encounters_of[pid])
        if fnr and chained:
            value = quote(f"{FNR_SYSTEM}|{fnr}", safe=":/")
            out["chain"].append(
                (
                    f"/fhir/Observation?encounter:Encounter.subject:Patient.identifier={value}",
                    chained,
                    0,
                )
            )
        if facts.practitioners[pid]:
            out["has"].append(
                (
                    f"/fhir/Practitioner?_has:Encounter:participant:subject={ref}",
                    len(facts.practitioners[pid]),
                    0,
                )
            )
        if facts.med_requests[pid]:
            out["include"].append(
                (
                    f"/fhir/MedicationRequest?subject={ref}&_include=MedicationRequest:requester",
                    facts.med_requests[pid],
                    len(facts.requesters[pid]),
                )
            )
    return out


def write_values(dataset: DataSet) -> dict[str, Any]:
    """Scan the stored resources, write search-<class>.tsv and values.json; their summary."""
    started = time.perf_counter()
    facts = Facts()
    scan(dataset, facts.visit)
    queries = build_queries(facts, dataset.seed)
    files = {}
    for cls, lines in queries.items():
        if not lines:
            raise RuntimeError(f"no stored data to build {cls} queries from")
        path = dataset.data_dir / f"search-{cls}.tsv"
        path.write_text("".join(f"{p}\t{m}\t{i}\n" for p, m, i in lines))
        files[cls] = str(path)
    years: Counter[int] = Counter()
    for counter in facts.years.values():
        years.update(counter)
    summary = {
        "version": VALUES_VERSION,
        "scanned": dict(facts.scanned),
        "patients": len(facts.patients),
        "patients_with_fnr": sum(1 for f, _, _ in facts.patients.values() if f),
        "encounters": len(facts.encounter_subject),
        "family_names": len({f for _, fs, _ in facts.patients.values() for f in fs}),
        "loinc_codes": dict(facts.loinc.most_common()),
        "observation_years": {str(y): n for y, n in sorted(years.items())},
        "paths": {cls: len(lines) for cls, lines in queries.items()},
        "files": files,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (dataset.data_dir / "values.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2)
    )
    return summary


def read_queries(dataset: DataSet) -> dict[str, list[Query]]:
    out = {}
    for cls in CLASSES:
        lines = (dataset.data_dir / f"search-{cls}.tsv").read_text().splitlines()
        out[cls] = [(p, int(m), int(i)) for p, m, i in (line.split("\t") for line in lines)]
    return out


def values_current(dataset: DataSet) -> dict[str, Any] | None:
    path = dataset.data_dir / "values.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if summary.get("version") != VALUES_VERSION:
        return None
    if not all((dataset.data_dir / f"search-{c}.tsv").exists() for c in CLASSES):
        return None
    return summary


# ---------------------------------------------------------------------------------------
# check: one example of every class, compared with the stored data


def check(port: int, queries: dict[str, list[Query]]) -> list[dict[str, Any]]:
    rows = []
    for cls in CLASSES:
        path, expected, expected_includes = queries[cls][0]
        row: dict[str, Any] = {
            "class": cls,
            "path": path,
            "expected_matches": expected,
            "expected_includes": expected_includes,
            "problems": [],
            "warnings": [],
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", headers={"Accept": "application/fhir+json"}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        row["ms"] = round((time.perf_counter() - started) * 1000, 1)
        row["status"] = status
        rows.append(row)
        if status != 200:
            row["problems"].append(f"status {status}: {body[:150].decode(errors='replace')}")
            continue
        try:
            bundle = orjson.loads(body)
        except orjson.JSONDecodeError:
            row["problems"].append("body is not JSON")
            continue
        judge(cls, bundle, row)
    return rows


def judge(cls: str, bundle: dict[str, Any], row: dict[str, Any]) -> None:
    """Fill in row with what the searchset holds and what is wrong with it."""
    problems, warnings = row["problems"], row["warnings"]
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "searchset":
        problems.append(
            f"not a searchset Bundle ({bundle.get('resourceType')} {bundle.get('type')})"
        )
    entries = bundle.get("entry", [])
    modes = Counter((e.get("search") or {}).get("mode") for e in entries)
    links = {link.get("relation"): link.get("url") for link in bundle.get("link", [])}
    row.update(
        matches=modes["match"],
        includes=modes["include"],
        other_modes=sum(n for m, n in modes.items() if m not in ("match", "include")),
        total=bundle.get("total"),
        next=links.get("next"),
    )
    if "self" not in links:
        warnings.append("no self link")
    if row["other_modes"]:
        problems.append(f"entries without search.mode match/include: {dict(modes)}")
    types = Counter(
        (e.get("resource") or {}).get("resourceType")
        for e in entries
        if (e.get("search") or {}).get("mode") == "match"
    )
    if set(types) - {MATCH_TYPE[cls]}:
        problems.append(f"match entries of types {dict(types)}, expected {MATCH_TYPE[cls]}")
    included = Counter(
        (e.get("resource") or {}).get("resourceType")
        for e in entries
        if (e.get("search") or {}).get("mode") == "include"
    )
    if included and (cls != "include" or set(included) - {INCLUDE_TYPE}):
        problems.append(f"unexpected include entries {dict(included)}")
    expected = row["expected_matches"]
    wrong = warnings if cls == "string" else problems
    if not row["matches"]:
        problems.append(f"no match entries (the stored data has {expected})")
    if row["total"] is not None and row["total"] != expected:
        wrong.append(f"total {row['total']}, the stored data has {expected}")
    page = min(expected, TOKEN_COUNT) if cls == "token" else expected
    if row["next"] is None and row["matches"] != page:
        wrong.append(f"{row['matches']} matches and no next link; the stored data has {expected}")
    elif row["next"] is not None and row["matches"] > expected:
        wrong.append(f"{row['matches']} matches on the first page, more than the {expected} stored")
    if cls == "token" and row["matches"] > TOKEN_COUNT:
        problems.append(f"{row['matches']} matches despite _count={TOKEN_COUNT}")
    if cls == "include":
        want = row["expected_includes"]
        complete = row["next"] is None
        if (complete and row["includes"] != want) or row["includes"] > want:
            problems.append(f"{row['includes']} included {INCLUDE_TYPE}s, expected {want}")


def print_check(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\ncheck {title}: one example per class (expected: counted in the stored data)")
    print(
        f"  {'class':<9} {'status':>6} {'ms':>7} {'match':>6} {'incl':>5} {'total':>7} "
        f"{'expected':>9} {'next':>4}  result"
    )
    for row in rows:
        expected = str(row["expected_matches"])
        if row["class"] == "include":
            expected += f"+{row['expected_includes']}"
        total = row.get("total")
        result = "; ".join(row["problems"]) or "ok"
        if row["warnings"]:
            result += " (warning: " + "; ".join(row["warnings"]) + ")"
        print(
            f"  {row['class']:<9} {row['status']:>6} {row['ms']:>7.1f} "
            f"{row.get('matches', '-')!s:>6} {row.get('includes', '-')!s:>5} "
            f"{'-' if total is None else total!s:>7} {expected:>9} "
            f"{'yes' if row.get('next') else 'no' if 'next' in row else '-':>4}  {result}"
        )
        print(f"  {'':<9} {row['path']}")


# ---------------------------------------------------------------------------------------
# a quiet server between runs; an up-to-date index for kept data

IDLE_CORES = 0.1  # the server (and PostgreSQL) using less than this: idle


def wait_for_idle_server(server_pid: int, max_wait: float) -> None:
    """Wait until the server and PostgreSQL are idle: wrk stops with up to --connections
    requests in flight, and slow searches can keep the server busy with them for seconds,
    which would be charged to the next run."""
    started = time.monotonic()
    used = 0.0
    while time.monotonic() - started < max_wait:
        before = bench._process_cpu()
        time.sleep(0.5)
        cpu = bench._cpu_breakdown(before, bench._process_cpu(), server_pid, 0.0, 0.0, 0.5)
        used = cpu["server_cores"] + cpu["postgres_cores"]
        if used < IDLE_CORES:
            waited = time.monotonic() - started
            if waited > 1.5:
                bench.log(f"server idle after {waited:.0f} s")
            return
    bench.log(f"server still busy after {max_wait:g} s ({used:.2f} cores); running anyway")


def analyze(dataset: DataSet) -> None:
    """Refresh PostgreSQL's planner statistics after a bulk load (autovacuum would, later)."""
    if not dataset.database_url:
        return

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(dataset.database_url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(run())
    bench.log("ANALYZE done")


def finish_reindex(dataset: DataSet) -> None:
    """Kept data: run queued reindex jobs to the end before serving (``samhandling reindex``),
    so no background indexing competes with the runs or leaves results incomplete."""
    exe = Path(sys.executable).parent / "samhandling"
    argv = [str(exe) if exe.exists() else "samhandling", "reindex"]
    argv += ["--data-dir", str(dataset.data_dir)]
    if dataset.database_url:
        argv += ["--database-url", dataset.database_url]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=bench.ROOT)
    text = " ".join((out.stdout + out.stderr).split())
    if out.returncode != 0:
        bench.log(f"samhandling reindex failed ({out.returncode}): {text[:300]}")
    elif "ran 0 batch" not in text:
        bench.log(f"samhandling reindex: {text[:300]}")


# ---------------------------------------------------------------------------------------
# one data set: server, load, values, check, timing


def script_args(dataset: DataSet, classes: list[str]) -> list[str]:
    return [f"{c}={dataset.data_dir / f'search-{c}.tsv'}" for c in classes]


def run_dataset(
    dataset: DataSet,
    args: argparse.Namespace,
    cache: bench.BundleCache,
    machine: dict[str, Any],
    stamp: str,
) -> dict[str, Any]:
    name = f"{dataset.backend} {dataset.patients:,} patients"
    remove_stale(dataset)
    info: dict[str, Any] = {
        "backend": dataset.backend,
        "patients": dataset.patients,
        "resources_per_patient": dataset.resources,
        "key": dataset.key,
        "data_dir": os.path.relpath(dataset.data_dir, bench.ROOT),
        "database_url": dataset.database_url,
    }
    marker = None if args.reload else dataset.reusable()
    if marker is None:
        shutil.rmtree(dataset.data_dir, ignore_errors=True)
        dataset.data_dir.mkdir(parents=True)
        if dataset.database:
            machine["postgresql"] = asyncio.run(
                bench.pg_recreate(args.pg_admin_url, dataset.database)
            )
    else:
        bench.log(
            f"{name}: reusing kept data {os.path.relpath(dataset.data_dir)} "
            f"({marker['stored']['resources']:,} resources, loaded {marker['load']['loaded_at']}; "
            "--reload to load afresh)"
        )
        if dataset.database:
            machine["postgresql"] = bench.stored_rows(
                dataset.backend, dataset.data_dir, dataset.database_url, "SHOW server_version"
            )[0][0]
        finish_reindex(dataset)
    port = bench.free_port()
    argv = bench.samhandling_argv(port, dataset.data_dir, dataset.database_url, args.workers)
    info["server_command"] = bench.env_command(bench.UNPROTECTED_ENV, argv)
    bench.log(f"{name}: {info['server_command']}")
    log_path = bench.LOGS / f"{stamp}-search-{dataset.backend}-p{dataset.patients}-server.log"
    series: list[bench.Series] = []
    try:
        with bench.Server(argv, port, log_path, env=bench.UNPROTECTED_ENV) as server:
            if dataset.database_url:
                info["postgresql_settings"] = asyncio.run(bench.pg_settings(dataset.database_url))
            if marker is None:
                loaded = load(port, cache, dataset, args.load_concurrency)
                stored = dataset.stored()
                marker = {
                    "key": dataset.key,
                    "backend": dataset.backend,
                    "patients": dataset.patients,
                    "resources_per_patient": dataset.resources,
                    "seed": dataset.seed,
                    "database": dataset.database,
                    "database_url": dataset.database_url,
                    "load": loaded,
                    "stored": {"resources": sum(stored.values()), "by_type": stored},
                }
                bench.log(
                    f"{name}: loaded {loaded['resources_written']:,} resources in "
                    f"{loaded['seconds']:,} s ({loaded['resources_per_s']:,} resources/s); "
                    f"stored {marker['stored']['resources']:,}: {stored}"
                )
                dataset.marker.write_text(json.dumps(marker, indent=2))  # complete: reusable
                info["reused"] = False
            else:
                info["reused"] = True
            info["load"] = marker["load"]
            info["stored"] = marker["stored"]
            values = values_current(dataset)
            if values is None:
                bench.log(f"{name}: reading query values from the stored resources")
                values = write_values(dataset)
            info["values"] = values
            bench.log(
                f"{name}: query paths per class {values['paths']} "
                f"({values['patients']:,} patients, {len(values['loinc_codes'])} LOINC codes, "
                f"observation years {min(values['observation_years'])}-"
                f"{max(values['observation_years'])})"
            )
            analyze(dataset)
            queries = read_queries(dataset)
            rows = check(port, queries)
            info["check"] = rows
            print_check(name, rows)
            if not args.check:
                for cls in [*CLASSES, "mix"]:
                    classes = list(CLASSES) if cls == "mix" else [cls]
                    found = bench.measure(
                        f"{name} {cls}",
                        dataset.backend,
                        cls,
                        port,
                        "search.lua",
                        script_args(dataset, classes),
                        args,
                        WRK_THREADS,
                        args.connections,
                        server.pid,
                        args.profile,
                        f"{stamp}-search-p{dataset.patients}",
                        lambda pid=server.pid: wait_for_idle_server(pid, args.settle_wait),
                    )
                    series.append(found)
    finally:
        if not args.keep_data:
            bench.log(f"{name}: removing the data (--no-keep-data)")
            dataset.remove()
    info["series"] = series
    return info


# ---------------------------------------------------------------------------------------
# report


def empty_count(series: bench.Series) -> int:
    return sum(int(r.report.get("extra", {}).get("empty", 0)) for r in series.runs)


def answered(series: bench.Series) -> bool:
    """Every run got responses (a run of slow searches can end before the first one)."""
    return all(r.report["requests"] > 0 for r in series.runs)


def clean(series: bench.Series) -> bool:
    """Numbers worth comparing: responses, all 200 with entries (501s are fast, not results)."""
    return answered(series) and not series.errors and not empty_count(series)


def mix_target(backend: str, series: bench.Series) -> tuple[str, bool | None]:
    if series.workload != "mix" or backend not in TARGETS:
        return "", None
    rate, p95 = TARGETS[backend]
    ok = clean(series) and series.median >= rate and series.median_latency("95") <= p95
    return f">={rate} & <={p95:g}ms", ok


def format_table(infos: list[dict[str, Any]]) -> str:
    header = (
        f"{'backend':<11} {'patients':>8} {'class':<9} {'req/s':>7} {'runs':<20} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'empty':>6} "
        f"{'srv cores':>9} {'target (mix)':<21} {'ok':<3}"
    )
    lines = [header, "-" * len(header)]
    for info in infos:
        for s in info["series"]:
            target, ok = mix_target(info["backend"], s)
            runs = " ".join(f"{r.requests_per_s:,.0f}" for r in s.runs)
            if not answered(s):
                target, ok = "NO RESPONSES in a run", False
            lines.append(
                f"{info['backend']:<11} {info['patients']:>8,} {s.workload:<9} "
                f"{s.median:>7,.0f} {runs:<20} {s.median_latency('50'):>7.2f} "
                f"{s.median_latency('95'):>7.2f} {s.median_latency('99'):>7.2f} "
                f"{s.errors:>6} {empty_count(s):>6} {s.median_server_cores:>9.2f} "
                f"{target:<21} {'' if ok is None else 'yes' if ok else 'NO':<3}"
            )
    return "\n".join(lines)


def scaling(infos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per backend and class: p50 at the largest patient count over p50 at the smallest."""
    out = []
    for backend in dict.fromkeys(i["backend"] for i in infos):
        ran = sorted(
            (i for i in infos if i["backend"] == backend and i["series"]),
            key=lambda i: i["patients"],
        )
        if len(ran) < 2:
            continue
        small, large = ran[0], ran[-1]
        for cls in [*CLASSES, "mix"]:
            a = next((s for s in small["series"] if s.workload == cls), None)
            b = next((s for s in large["series"] if s.workload == cls), None)
            if a is None or b is None or not (answered(a) and answered(b)):
                continue
            ratio = b.median_latency("50") / a.median_latency("50")
            out.append(
                {
                    "backend": backend,
                    "class": cls,
                    "small": small["patients"],
                    "large": large["patients"],
                    "p50_small_ms": round(a.median_latency("50"), 3),
                    "p50_large_ms": round(b.median_latency("50"), 3),
                    "ratio": round(ratio, 2),
                    "errors": a.errors + b.errors + empty_count(a) + empty_count(b),
                    "meets_target": ratio <= SCALING_TARGET and clean(a) and clean(b),
                }
            )
    return out


def format_scaling(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = [
        f"\nscaling: p50(largest) / p50(smallest patient count), target <= {SCALING_TARGET}",
        f"{'backend':<11} {'class':<9} {'sizes':>15} {'p50 ms':>15} {'ratio':>6} {'ok':<3}",
    ]
    for r in rows:
        sizes = f"{r['large']:,}/{r['small']:,}"
        p50 = f"{r['p50_large_ms']:.2f}/{r['p50_small_ms']:.2f}"
        lines.append(
            f"{r['backend']:<11} {r['class']:<9} {sizes:>15} {p50:>15} {r['ratio']:>6.2f} "
            f"{'yes' if r['meets_target'] else 'NO':<3}"
        )
    return "\n".join(lines)


def series_json(info: dict[str, Any], s: bench.Series) -> dict[str, Any]:
    target, ok = mix_target(info["backend"], s)
    out = s.as_json()
    for key in ("target", "meets_target"):  # run.py's throughput targets do not apply
        out.pop(key, None)
    return out | {
        "patients": info["patients"],
        "class": s.workload,
        "empty": empty_count(s),
        "answered": answered(s),
        "clean": clean(s),
        "target": target or None,
        "meets_target": ok,
    }


# ---------------------------------------------------------------------------------------
# the whole invocation


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad --patients {text!r}") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--patients must be positive counts, e.g. 1000,10000")
    return sorted(set(sizes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*bench.BACKENDS, "both"], default="both")
    parser.add_argument("--patients", type=parse_sizes, default=[1000, 10000])
    parser.add_argument("--resources-per-patient", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only load (or reuse) and check one query of every class; no timing",
    )
    parser.add_argument(
        "--keep-data",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the loaded data for the next invocation (default: keep)",
    )
    parser.add_argument("--reload", action="store_true", help="load afresh even if data is kept")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    parser.add_argument(
        "--load-concurrency", type=int, default=bench.LOAD_CONCURRENCY, help="loading connections"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10,
        help="before each run, wait up to this many seconds for other processes to go idle",
    )
    parser.add_argument(
        "--settle-wait",
        type=float,
        default=60,
        help="before each run, wait up to this many seconds for the server to go idle",
    )
    parser.add_argument(
        "--profile", action="store_true", help="one extra run per class under py-spy"
    )
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.duration < 1 or args.connections < WRK_THREADS:
        parser.error("--runs and --duration must be at least 1, --connections at least 2")
    if args.resources_per_patient < 2:
        parser.error("--resources-per-patient must be at least 2")

    backends = list(bench.BACKENDS) if args.backend == "both" else [args.backend]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    bench.LOGS.mkdir(parents=True, exist_ok=True)
    machine = bench.machine_info()
    source = bench.source_version()
    started = time.perf_counter()
    bench.print_header(machine, source)
    cache = bench.BundleCache(args.seed, args.resources_per_patient)

    infos = []
    for backend in backends:
        for patients in args.patients:
            dataset = DataSet(
                backend, patients, args.resources_per_patient, args.seed, args.pg_admin_url
            )
            infos.append(run_dataset(dataset, args, cache, machine, stamp))
    elapsed = time.perf_counter() - started
    scaled = scaling(infos)

    failed_checks = [
        (i["backend"], i["patients"], row["class"])
        for i in infos
        for row in i["check"]
        if row["problems"]
    ]
    result = {
        "started": stamp,
        "command": bench.command_line(),
        "machine": machine,
        "source": source,
        "settings": vars(args),
        "wrk": {"threads": WRK_THREADS, "connections": args.connections},
        "targets": {
            "mix": {b: {"req_s": r, "p95_ms": p} for b, (r, p) in TARGETS.items()},
            "scaling_p50_ratio": SCALING_TARGET,
        },
        "datasets": [
            {k: v for k, v in i.items() if k != "series"}
            | {"series": [series_json(i, s) for s in i["series"]]}
            for i in infos
        ],
        "scaling": scaled,
        "elapsed_s": round(elapsed, 1),
    }
    out = bench.RESULTS / f"search-{stamp}.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))

    print()
    print(f"command: {bench.command_line()}")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), Python {machine['python']}"
        f", SQLite {machine['sqlite']}, PostgreSQL {machine['postgresql'] or '-'}, "
        f"server workers {args.workers}"
    )
    for info in infos:
        load_info = info["load"]
        how = "kept from an earlier invocation" if info["reused"] else "loaded now"
        print(
            f"{info['backend']} {info['patients']:,} patients: {info['stored']['resources']:,} "
            f"resources ({how}: {load_info['resources_per_s']:,} resources/s, "
            f"{load_info['seconds']:,} s); {info['server_command']}"
        )
    if not args.check:
        print(
            f"\nmedian of {args.runs} runs of {args.duration:g} s, wrk -t{WRK_THREADS} "
            f"-c{args.connections}; errors: responses other than 200 plus socket errors (all "
            "runs); empty: 200s without entries"
        )
        print(format_table(infos))
        print(format_scaling(scaled))
    flagged = [(i, s, r) for i in infos for s in i["series"] for r in s.runs if r.flagged]
    for i, s, r in flagged:
        print(f"FLAGGED {i['backend']} {i['patients']} {s.workload}: {'; '.join(r.flagged)}")
    silent = [(i, s) for i in infos for s in i["series"] if not answered(s)]
    for i, s in silent:
        print(f"NO RESPONSES {i['backend']} {i['patients']} {s.workload}: a run ended before any")
    for backend, patients, cls in failed_checks:
        print(f"CHECK FAILED {backend} {patients} {cls} (see the check table above)")
    print(bench.code_line(source))
    print(f"\nresults: {os.path.relpath(out)}  ({elapsed / 60:.1f} min)")
    if args.check:
        return 1 if failed_checks else 0
    return 1 if flagged or failed_checks or silent else 0


if __name__ == "__main__":
    sys.exit(main())

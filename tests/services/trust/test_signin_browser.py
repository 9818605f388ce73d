"""The test identity provider's sign-in pages in a real browser (Chromium through Playwright).

A client pushes an authorization request (PAR with PKCE), Chromium opens the authorize URL,
the user searches the person register, picks a person and a security level and signs in (or
cancels); the browser lands on the client's redirect URI, served here by a tiny HTTP server,
and the client exchanges the code for tokens. Each backend gets its own server and database
with the demo data (``samhandling demo``), so the shared test server's data stays as it was.

Debian's Chromium (``/usr/bin/chromium``) is used as it is: nothing is downloaded. The tests
skip when it is not installed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
import pytest

from conftest import (
    BACKENDS,
    TEST_ORGNR,
    Server,
    postgres_admin_url,
    register_client,
    samhandling_cli,
    start_server,
    stop_server,
)
from samhandling.platform.auth import jose
from samhandling.services.trust.tokentool import TokenClient
from samhandling.synth import (
    FNR_SYSTEM,
    HPR_SYSTEM,
    care_providers_bundle,
    fodselsnummer,
    patient_bundles,
)

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    if os.environ.get("SAMHANDLING_REQUIRE_BROWSER") == "1":  # CI: the browser must be there
        pytest.fail(f"SAMHANDLING_REQUIRE_BROWSER=1 but {CHROMIUM} is missing", pytrace=False)
    pytest.skip(f"the browser tests need Chromium at {CHROMIUM}", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

DEMO_PATIENTS = 5
SCOPE = "openid samhandling:fhir/read"
PID = "helseid://claims/identity/pid"
SECURITY_LEVEL = "helseid://claims/identity/security_level"
HPR_NUMBER = "helseid://claims/hpr/hpr_number"
TIMEOUT_MS = 10_000  # for actions, navigations and assertions (generous: CI may be busy)
expect.set_options(timeout=TIMEOUT_MS)


# ------------------------------------------------------------------------ the demo people


@dataclass(frozen=True)
class DemoPerson:
    pid: str
    name: str
    family: str
    hpr: str | None


def _demo_people() -> tuple[list[DemoPerson], list[DemoPerson]]:
    """(practitioners, patients) as ``samhandling demo --patients 5`` loads them."""

    def person(resource: dict[str, Any]) -> DemoPerson:
        ids = {i["system"]: i["value"] for i in resource["identifier"]}
        name = resource["name"][0]
        full = " ".join([*name["given"], name["family"]])
        return DemoPerson(ids[FNR_SYSTEM], full, name["family"], ids.get(HPR_SYSTEM))

    practitioners = [
        person(e["resource"])
        for e in care_providers_bundle()["entry"]
        if e["resource"]["resourceType"] == "Practitioner"
    ]
    patients = [person(b["entry"][0]["resource"]) for b in patient_bundles(DEMO_PATIENTS)]
    return practitioners, patients


PRACTITIONERS, PATIENTS = _demo_people()
# A practitioner found alone when searching for their surname (a name search matches the
# start of any part of a name, ignoring case).
CHOSEN = next(
    p
    for p in PRACTITIONERS
    if not any(
        part.casefold().startswith(p.family.casefold())
        for q in PRACTITIONERS + PATIENTS
        if q is not p
        for part in q.name.split()
    )
)


# ------------------------------------------------------------------------------- fixtures


class _Callback(BaseHTTPRequestHandler):
    """The client's redirect URI: a plain page, so the browser lands somewhere real."""

    def do_GET(self) -> None:
        body = b"<!doctype html><html lang='nb'><title>Klienten</title><h1>Tilbake</h1></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def redirect_uri() -> Iterator[str]:
    """The redirect URI of the test clients, answered by a small local HTTP server."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/callback"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="nb-NO")
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def _admin(url: str, sql: str) -> None:
    """Run one statement as the PostgreSQL administrator.

    In a thread of its own: Playwright's sync API runs an event loop in this one.
    """

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(run())).result()


@dataclass(frozen=True)
class Demo:
    """A server with the demo data and two clients that sign people in."""

    server: Server
    personnel: TokenClient  # a health-sector client: health personnel sign in
    citizen: TokenClient  # a citizen client (``--citizen``)


def _client(server: Server, config: dict[str, Any]) -> TokenClient:
    return TokenClient(server.url, config["client_id"], config["jwk"])


@pytest.fixture(scope="module", params=BACKENDS)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redirect_uri: str
) -> Iterator[Demo]:
    """A server of its own on a fresh database, with the demo data and the clients."""
    data_dir = tmp_path_factory.mktemp(f"signin-{request.param}")
    admin_url = None
    if request.param == "sqlite":
        database_url = f"sqlite:///{data_dir / 'samhandling.db'}"
    else:
        admin_url = postgres_admin_url()
        assert admin_url is not None
        name = f"samhandling_signin_{uuid.uuid4().hex[:12]}"
        _admin(admin_url, f'CREATE DATABASE "{name}"')
        database_url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    try:
        running = start_server(database_url, data_dir, request.param)
        try:
            # The three commands are independent: run them side by side.
            with ThreadPoolExecutor(3) as pool:
                loaded = pool.submit(
                    samhandling_cli,
                    running,
                    "demo",
                    "--persons",
                    "0",
                    "--patients",
                    str(DEMO_PATIENTS),
                )
                personnel = pool.submit(
                    register_client, running, "--scope", "samhandling:fhir/read",
                    "--orgnr", TEST_ORGNR, "--redirect-uri", redirect_uri,
                )  # fmt: skip
                citizen = pool.submit(
                    register_client, running, "--scope", "samhandling:fhir/read",
                    "--citizen", "--redirect-uri", redirect_uri,
                )  # fmt: skip
                loaded.result()
            yield Demo(
                running, _client(running, personnel.result()), _client(running, citizen.result())
            )
        finally:
            stop_server(running)
    finally:
        if admin_url is not None:
            _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Authorization:
    """A pushed authorization request: the URL to open and what the client keeps."""

    url: str
    state: str
    verifier: str


def push(client: TokenClient, redirect_uri: str) -> Authorization:
    verifier = jose.b64url(os.urandom(32))
    state = jose.b64url(os.urandom(12))
    request_uri = client.push(
        {
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "code_challenge": jose.sha256_b64url(verifier),
            "code_challenge_method": "S256",
            "state": state,
            "nonce": jose.b64url(os.urandom(12)),
        }
    )
    query = urlencode({"client_id": client.client_id, "request_uri": request_uri})
    return Authorization(f"{client.issuer}/connect/authorize?{query}", state, verifier)


def landed(page: Page, redirect_uri: str) -> dict[str, str]:
    """Wait for the browser to reach the redirect URI; its query parameters."""
    page.wait_for_url(lambda url: url.startswith(redirect_uri + "?"))
    expect(page.get_by_role("heading", name="Tilbake")).to_be_visible()
    query = parse_qs(urlsplit(page.url).query, strict_parsing=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {name: values[0] for name, values in query.items()}


def exchange(client: TokenClient, auth: Authorization, code: str, redirect_uri: str) -> dict:
    """The code for tokens; the access token's claims."""
    tokens = client.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": auth.verifier,
        }
    )
    return jwt_claims(tokens.access_token)


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def rows(page: Page) -> dict[str, list[str]]:
    """The people table: fødselsnummer -> the cells of its row (name, number, ...)."""
    table: dict[str, list[str]] = {}
    for row in page.locator("table tbody tr").all():
        cells = [c.strip() for c in row.locator("td").all_inner_texts()][1:]
        table[cells[1]] = cells
    return table


def searched(url: str) -> bool:
    return "q=" in urlsplit(url).query


def sign_in(page: Page, person: DemoPerson, level: int) -> None:
    """Search for ``person`` by surname, pick them and ``level``, press "Logg inn"."""
    page.get_by_label("Søk").fill(person.family)
    page.get_by_role("button", name="Søk").click()
    page.wait_for_url(searched)
    page.get_by_label(person.name, exact=True).check()
    page.get_by_label(f"Nivå {level}").check()
    page.get_by_role("button", name="Logg inn").click()


# ---------------------------------------------------------------------------------- tests


def test_health_personnel_sign_in(page: Page, demo: Demo, redirect_uri: str) -> None:
    auth = push(demo.personnel, redirect_uri)
    response = page.goto(auth.url)
    assert response is not None and response.status == 200
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page).to_have_title("Logg inn som helsepersonell – testinnlogging")
    expect(page.get_by_role("heading", level=1)).to_have_text("Logg inn som helsepersonell")
    expect(page.get_by_text("ingen identitet blir kontrollert")).to_be_visible()
    headers = page.locator("table thead th").all_inner_texts()
    assert [h.strip() for h in headers[1:]] == ["Navn", "Fødselsnummer", "HPR-nummer"]

    # Everyone in the demo data is listed, practitioners with their HPR numbers.
    listed = rows(page)
    assert len(listed) == len(PRACTITIONERS) + len(PATIENTS)
    for person in PRACTITIONERS + PATIENTS:
        name, pid, hpr = listed[person.pid]
        assert (name, pid) == (person.name, person.pid)
        assert hpr == (person.hpr or "–"), person
    assert all(p.hpr for p in PRACTITIONERS) and not any(p.hpr for p in PATIENTS)

    # Search by name: the list narrows to the practitioner, who signs in at level 4.
    page.get_by_label("Søk").fill(CHOSEN.family)
    page.get_by_role("button", name="Søk").click()
    page.wait_for_url(searched)
    expect(page.get_by_label("Søk")).to_have_value(CHOSEN.family)
    assert rows(page) == {CHOSEN.pid: [CHOSEN.name, CHOSEN.pid, CHOSEN.hpr]}
    page.get_by_label(CHOSEN.name, exact=True).check()
    page.get_by_label("Nivå 4").check()
    page.get_by_role("button", name="Logg inn").click()

    answer = landed(page, redirect_uri)
    assert set(answer) == {"code", "state", "iss"}
    assert answer["state"] == auth.state and answer["iss"] == demo.server.url
    claims = exchange(demo.personnel, auth, answer["code"], redirect_uri)
    assert claims[PID] == CHOSEN.pid
    assert claims[SECURITY_LEVEL] == "4"
    assert claims[HPR_NUMBER] == CHOSEN.hpr
    assert claims["name"] == CHOSEN.name
    assert claims["client_id"] == demo.personnel.client_id
    assert claims["cnf"] == {"jkt": demo.personnel.dpop.jkt}

    # The request_uri is single-use: opening the authorize URL again shows an error page.
    again = page.goto(auth.url)
    assert again is not None and again.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("Innlogging feilet")
    expect(page.get_by_text("invalid_request_uri")).to_be_visible()


def test_level_3_and_a_patient_without_hpr(page: Page, demo: Demo, redirect_uri: str) -> None:
    auth = push(demo.personnel, redirect_uri)
    page.goto(auth.url)
    patient = PATIENTS[0]
    page.get_by_label("Søk").fill(patient.pid)  # a fødselsnummer finds exactly that person
    page.get_by_role("button", name="Søk").click()
    page.wait_for_url(searched)
    assert rows(page) == {patient.pid: [patient.name, patient.pid, "–"]}
    expect(page.get_by_label(patient.name, exact=True)).to_be_checked()  # the only one
    page.get_by_label("Nivå 3").check()
    page.get_by_role("button", name="Logg inn").click()
    answer = landed(page, redirect_uri)
    claims = exchange(demo.personnel, auth, answer["code"], redirect_uri)
    assert claims[PID] == patient.pid
    assert claims[SECURITY_LEVEL] == "3"
    assert HPR_NUMBER not in claims


def test_cancel_redirects_with_access_denied(page: Page, demo: Demo, redirect_uri: str) -> None:
    auth = push(demo.personnel, redirect_uri)
    page.goto(auth.url)
    page.get_by_role("button", name="Avbryt").click()
    answer = landed(page, redirect_uri)
    assert answer["error"] == "access_denied"
    assert answer["state"] == auth.state
    assert "code" not in answer
    # Cancelling spends the request too.
    again = page.goto(auth.url)
    assert again is not None and again.status == 400


def test_unknown_fodselsnummer(page: Page, demo: Demo, redirect_uri: str) -> None:
    """Searching for a number nobody has finds no one; signing in then asks for a person."""
    auth = push(demo.personnel, redirect_uri)
    page.goto(auth.url)
    unknown = fodselsnummer(date(1990, 1, 1), random.Random(7), female=True)
    assert unknown not in {p.pid for p in PRACTITIONERS + PATIENTS}
    page.get_by_label("Søk").fill(unknown)
    page.get_by_role("button", name="Søk").click()
    page.wait_for_url(searched)
    expect(page.get_by_text("Ingen personer funnet")).to_be_visible()
    assert rows(page) == {}
    page.get_by_role("button", name="Logg inn").click()
    expect(page.get_by_role("alert")).to_contain_text("Velg en person")
    # The request is still usable: pick someone from the full list and sign in.
    page.get_by_label(PRACTITIONERS[0].name, exact=True).check()
    page.get_by_role("button", name="Logg inn").click()
    answer = landed(page, redirect_uri)
    assert answer["state"] == auth.state
    claims = exchange(demo.personnel, auth, answer["code"], redirect_uri)
    assert claims[PID] == PRACTITIONERS[0].pid


def test_citizen_sign_in(page: Page, demo: Demo, redirect_uri: str) -> None:
    auth = push(demo.citizen, redirect_uri)
    page.goto(auth.url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Logg inn som innbygger")
    expect(page).to_have_title("Logg inn som innbygger – testinnlogging")
    headers = [h.strip() for h in page.locator("table thead th").all_inner_texts()]
    assert "HPR-nummer" not in headers
    # Even a practitioner signing in as a citizen gets no HPR claim.
    sign_in(page, CHOSEN, 4)
    answer = landed(page, redirect_uri)
    assert answer["state"] == auth.state
    claims = exchange(demo.citizen, auth, answer["code"], redirect_uri)
    assert claims[PID] == CHOSEN.pid
    assert claims[SECURITY_LEVEL] == "4"
    assert HPR_NUMBER not in claims


def test_a_second_tab_cannot_use_the_request_again(
    page: Page, demo: Demo, redirect_uri: str
) -> None:
    """The form open in two tabs: once one has signed in, the other gets an error page."""
    auth = push(demo.personnel, redirect_uri)
    page.goto(auth.url)
    other = page.context.new_page()
    other.goto(auth.url)
    page.get_by_role("button", name="Logg inn").click()
    assert "code" in landed(page, redirect_uri)
    other.get_by_role("button", name="Logg inn").click()
    expect(other.get_by_role("heading", level=1)).to_have_text("Innlogging feilet")
    assert not other.url.startswith(redirect_uri)

"""Binary content out of the resource row, over real HTTP on both backends (R4
binary.html#rest): raw writes and reads, FHIR JSON reads with ``data`` put back, versions,
transactions, the size limit, and memory that stays flat while large content streams."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from policy_helpers import (
    EPICRISIS,
    World,
    auditor,
    basis,
    reason_of,
    records_by,
    submission,
    summary,
)

from conftest import (
    BACKENDS,
    TEST_ENV,
    Server,
    database_url_for,
    free_port,
    fresh_engine,
    patient,
)
from samhandling.app import create_app
from samhandling.platform.fhir.binaries import CHUNK_SIZE
from samhandling.platform.fhir.binaries import DEFAULT_MAX_BINARY_BYTES as ENGINE_DEFAULT
from samhandling.platform.fhir.errors import FhirError
from samhandling.settings import DEFAULT_MAX_BINARY_BYTES, Settings

PDF = "application/pdf"
FHIR_JSON = "application/fhir+json"
SUBSETTED = "SUBSETTED"
MIB = 1024 * 1024


def some_bytes(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes (incompressible, every byte value)."""
    return random.Random(seed).randbytes(size)


def upload(
    fhir: httpx.Client,
    content: bytes | Iterator[bytes],
    *,
    id: str | None = None,
    context: str | None = None,
    content_type: str = PDF,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A raw create (POST) or update (PUT, with ``id``) of a Binary."""
    sent = {"content-type": content_type, **(headers or {})}
    if context is not None:
        sent["x-security-context"] = context
    if id is not None:
        return fhir.put(f"/Binary/{id}", content=content, headers=sent)
    return fhir.post("/Binary", content=content, headers=sent)


def raw(fhir: httpx.Client, path: str, accept: str = PDF) -> httpx.Response:
    return fhir.get(path, headers={"accept": accept})


def tags(resource: dict) -> list[str]:
    return [tag["code"] for tag in resource.get("meta", {}).get("tag", [])]


def new_patient(fhir: httpx.Client) -> str:
    response = fhir.post("/Patient", json=patient())
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_raw_upload_then_raw_download_is_byte_identical(fhir: httpx.Client) -> None:
    content = some_bytes(3 * MIB + 12345, seed=1)  # chunks of 256 KiB and a partial one
    context = f"Patient/{new_patient(fhir)}"
    created = upload(fhir, content, context=context)
    assert created.status_code == 201, created.text
    stored = created.json()
    assert stored["contentType"] == PDF
    assert stored["securityContext"] == {"reference": context}
    assert "data" not in stored and SUBSETTED in tags(stored)  # what the row holds
    assert created.headers["location"].endswith(f"/Binary/{stored['id']}/_history/1")

    for accept in (PDF, "*/*", "application/octet-stream, */*;q=0.1"):
        read = raw(fhir, f"/Binary/{stored['id']}", accept)
        assert read.status_code == 200, read.text
        assert read.content == content
        assert read.headers["content-type"] == PDF
        assert read.headers["content-length"] == str(len(content))
        assert read.headers["etag"] == 'W/"1"'
        assert read.headers["last-modified"]
        assert read.headers["x-security-context"] == context
        digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
        assert read.headers["repr-digest"] == f"sha-256=:{digest}:"
        assert read.headers["x-content-type-options"] == "nosniff"

    head = fhir.head(f"/Binary/{stored['id']}", headers={"accept": PDF})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(content))
    unchanged = fhir.get(
        f"/Binary/{stored['id']}", headers={"accept": PDF, "if-none-match": 'W/"1"'}
    )
    assert unchanged.status_code == 304


def test_chunked_upload_and_content_types(fhir: httpx.Client) -> None:
    content = some_bytes(CHUNK_SIZE * 2, seed=2)  # exactly two chunks
    pieces = (content[i : i + 10_000] for i in range(0, len(content), 10_000))
    created = upload(fhir, pieces, content_type="application/xml;  charset=utf-8")
    assert created.status_code == 201, created.text
    id = created.json()["id"]
    assert created.json()["contentType"] == "application/xml; charset=utf-8"
    read = raw(fhir, f"/Binary/{id}", "application/xml")  # a CDA document, say: not FHIR
    assert read.content == content
    assert read.headers["content-type"] == "application/xml; charset=utf-8"
    assert "x-security-context" not in read.headers

    assert upload(fhir, b"x", content_type="nonsense").status_code == 415
    assert upload(fhir, b"x", content_type="application/fhir+xml").status_code == 415


def test_json_read_puts_data_back(fhir: httpx.Client) -> None:
    content = some_bytes(MIB + 1, seed=3)
    id = upload(fhir, content).json()["id"]
    for params, accept in (({}, "application/fhir+json"), ({"_format": "json"}, "*/*")):
        read = fhir.get(f"/Binary/{id}", params=params, headers={"accept": accept})
        assert read.status_code == 200
        assert read.headers["content-type"].startswith("application/fhir+json")
        body = read.json()
        assert base64.b64decode(body["data"]) == content
        assert SUBSETTED not in tags(body)
        assert list(body)[-1] == "data"
        assert body["meta"]["versionId"] == "1"

    summary = fhir.get(f"/Binary/{id}", params={"_summary": "true"}).json()
    assert "data" not in summary and SUBSETTED in tags(summary)
    elements = fhir.get(f"/Binary/{id}", params={"_elements": "data"}).json()
    assert base64.b64decode(elements["data"]) == content

    found = fhir.get("/Binary", params={"_id": id}).json()["entry"][0]["resource"]
    assert "data" not in found and SUBSETTED in tags(found)  # a search shows it as stored


def test_a_json_write_is_stored_out_of_row_too(fhir: httpx.Client) -> None:
    content = some_bytes(100_000, seed=4)
    binary = {
        "resourceType": "Binary",
        "meta": {"tag": [{"system": "urn:test", "code": "mine"}]},
        "contentType": "image/png",
        "data": base64.b64encode(content).decode(),
    }
    created = fhir.post("/Binary", json=binary)
    assert created.status_code == 201, created.text
    id = created.json()["id"]
    assert "data" not in created.json()
    assert tags(created.json()) == ["mine", SUBSETTED]
    assert raw(fhir, f"/Binary/{id}", "image/png").content == content
    read = fhir.get(f"/Binary/{id}").json()
    assert tags(read) == ["mine"]
    assert read["data"] == binary["data"]

    spaced = {**binary, "data": " ".join(binary["data"][i : i + 76] for i in range(0, 200, 76))}
    assert fhir.post("/Binary", json=spaced).status_code == 201  # base64Binary allows spaces
    bad = fhir.post("/Binary", json={**binary, "data": "not base64!"})
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["Binary.data"]


def test_a_transaction_with_a_binary_entry(fhir: httpx.Client) -> None:
    content = b"%PDF-1.4 " + some_bytes(2 * MIB, 11)
    bundle = submission(new_patient(fhir), (content, EPICRISIS))
    response = fhir.post("/", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    binary = next(e for e in entries if e["response"]["location"].startswith("Binary/"))
    document = next(e for e in entries if e["response"]["location"].startswith("Document"))
    binary_id = binary["resource"]["id"]
    attachment = document["resource"]["content"][0]["attachment"]
    assert attachment["url"] == f"Binary/{binary_id}"
    assert binary["resource"]["securityContext"]["reference"] == (
        f"DocumentReference/{document['resource']['id']}"
    )
    read = raw(fhir, f"/Binary/{binary_id}")
    assert read.content == content
    assert base64.b64decode(attachment["hash"]) == hashlib.sha1(content).digest()
    assert base64.b64decode(fhir.get(f"/Binary/{binary_id}").json()["data"]) == content


def over_limit(pieces: int, piece: bytes) -> Iterator[bytes]:
    for _ in range(pieces):
        yield piece


def test_over_the_limit_is_413_and_nothing_is_stored(fhir: httpx.Client) -> None:
    piece = some_bytes(MIB, 13)
    pieces = DEFAULT_MAX_BINARY_BYTES // MIB + 1
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    id = f"big-{uuid.uuid4().hex[:12]}"
    chunked = upload(fhir, over_limit(pieces, piece), id=id)  # no Content-Length
    assert chunked.status_code == 413, chunked.text
    assert chunked.json()["issue"][0]["code"] == "too-costly"
    assert fhir.get(f"/Binary/{id}").status_code == 404
    declared = upload(
        fhir,
        over_limit(pieces, piece),
        headers={"content-length": str(pieces * MIB)},
    )
    assert declared.status_code == 413, declared.text
    assert declared.json()["resourceType"] == "OperationOutcome"
    history = fhir.get("/Binary/_history", params={"_since": since}).json()
    assert not history.get("entry")


def test_a_digest_is_checked(fhir: httpx.Client) -> None:
    content = some_bytes(1000, 14)
    good = base64.b64encode(hashlib.sha256(content).digest()).decode()
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    ok = upload(fhir, content, headers={"content-digest": f"sha-256=:{good}:"})
    assert ok.status_code == 201, ok.text
    refused = upload(fhir, content, headers={"content-digest": f"sha-256=:{bad}:"})
    assert refused.status_code == 400


def test_raw_reads_are_judged_and_recorded_as_reads(server: Server) -> None:
    """A document's content is judged by the document its securityContext names, and a raw
    read leaves the same audit record as a FHIR read."""
    admin = httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth)
    world = World(server, admin)
    world.organisation()
    pid, hpr = world.doctor()
    plain, reserved, hiding = world.person(40), world.person(41), world.person(42)
    content = b"%PDF-1.4 " + some_bytes(300_000, 15)
    document, binary = world.document(plain, content)
    reserved_binary = world.document(reserved, content)[1]
    hidden_document, hidden_binary = world.document(hiding, content)
    world.reserve(reserved, "kjernejournal")
    world.hide(hiding, f"DocumentReference/{hidden_document}")
    time.sleep(1.2)  # the registers' caches notice changes within a second
    consent = basis("SAMTYKKE")
    with world.clinician(pid) as doctor:
        read = doctor.get(f"/Binary/{binary}", headers={**consent, "accept": PDF})
        assert read.status_code == 200, read.text
        assert read.content == content
        assert read.headers["x-security-context"] == f"DocumentReference/{document}"
        as_json = doctor.get(f"/Binary/{binary}", headers={**consent, "accept": FHIR_JSON})
        assert base64.b64decode(as_json.json()["data"]) == content
        refused = doctor.get(f"/Binary/{reserved_binary}", headers={**consent, "accept": PDF})
        assert refused.status_code == 403 and reason_of(refused) == "reserved"
        hidden = doctor.get(f"/Binary/{hidden_binary}", headers={**consent, "accept": PDF})
        assert hidden.status_code == 404
        assert hidden.headers["content-type"].startswith(FHIR_JSON)  # an OperationOutcome
    with auditor(server) as audit:
        records = [summary(event) for event in records_by(audit, hpr)]
    reads = [r for r in records if r["data"] == [f"Binary/{binary}/_history/1"]]
    expected = {"interaction": "read", "action": "R", "outcome": "0", "patients": [plain.pid],
                "data": [f"Binary/{binary}/_history/1"], "basis": "SAMTYKKE"}  # fmt: skip
    assert reads == [expected, expected]  # the FHIR read and the raw read
    assert any(r["outcome"] != "0" and r["patients"] == [reserved.pid] for r in records)
    admin.close()


def test_the_limit_is_a_setting() -> None:
    settings = Settings.from_env({"SAMHANDLING_MAX_BINARY_BYTES": "12345"})
    assert settings.max_binary_bytes == 12345
    assert Settings.from_env(settings.to_env()).max_binary_bytes == 12345
    assert Settings.from_env({}).max_binary_bytes == DEFAULT_MAX_BINARY_BYTES
    assert ENGINE_DEFAULT == DEFAULT_MAX_BINARY_BYTES  # the engine on its own agrees


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_engine_keeps_data_out_of_the_row(backend: str, tmp_path: Path) -> None:
    content = some_bytes(CHUNK_SIZE * 3 + 7, 16)
    binary = {"resourceType": "Binary", "contentType": PDF}
    async with fresh_engine(backend, tmp_path) as engine:
        engine.max_binary_bytes = len(content)
        data = base64.b64encode(content).decode()
        written = (await engine.create("Binary", {**binary, "data": data})).resource
        assert b'"data"' not in (written.content or b"")
        mark = "?" if backend == "sqlite" else "$1"
        for table in ("resource", "resource_history"):
            rows = await engine.store.fetch(
                f"SELECT content FROM {table} WHERE id = {mark}", [written.id]
            )
            assert [bytes(row[0]) for row in rows] == [written.content]
        info = await engine.binary_info(written)
        assert info is not None
        assert (info.size, info.chunks) == (len(content), 4)
        assert info.sha1 == hashlib.sha1(content).digest()
        assert info.sha256 == hashlib.sha256(content).digest()
        assert await engine.binary_data(written) == content
        too_large = base64.b64encode(content + b"!").decode()
        with pytest.raises(FhirError) as refused:
            await engine.create("Binary", {**binary, "data": too_large})
        assert refused.value.status == 413
        rows = await engine.store.fetch("SELECT COUNT(*) FROM binary_content", [])
        assert rows[0][0] == 1


# the engine on its own (no access policy: on the platform, Kjernejournal's rules keep a
# shared document's content from ever changing, so updates and deletes are tried here)


@contextlib.contextmanager
def in_process_server(backend: str, request: pytest.FixtureRequest, data_dir: Path):
    """The application in this process (uvicorn in a thread, real HTTP on a socket), so
    tracemalloc sees every allocation the server makes. The FHIR API without token checks
    and without the access policy: the engine, its storage and the streaming."""
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url_for(backend, request, data_dir),
        port=port,
        log_level="warning",
        unprotected_api=True,
        secret_key=TEST_ENV["SAMHANDLING_SECRET_KEY"],
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module", params=BACKENDS)
def fhir_open(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """A client of the in-process server, one per backend for this module."""
    data_dir = tmp_path_factory.mktemp(f"binary-{request.param}")
    with (
        in_process_server(request.param, request, data_dir) as base,
        httpx.Client(base_url=base, timeout=120, headers={"accept": FHIR_JSON}) as client,
    ):
        yield client


def test_versions_keep_their_own_content(fhir_open: httpx.Client) -> None:
    first, second, third = some_bytes(300_000, 5), some_bytes(200_000, 6), some_bytes(10, 7)
    id = upload(fhir_open, first).json()["id"]
    stale = upload(fhir_open, second, id=id, headers={"if-match": 'W/"0"'})
    assert stale.status_code == 412
    updated = upload(
        fhir_open, second, id=id, content_type="image/jpeg", headers={"if-match": 'W/"1"'}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["meta"]["versionId"] == "2"
    as_json = fhir_open.get(f"/Binary/{id}").json()
    changed = fhir_open.put(
        f"/Binary/{id}", json={**as_json, "data": base64.b64encode(third).decode()}
    )
    assert changed.status_code == 200, changed.text

    assert raw(fhir_open, f"/Binary/{id}/_history/1").content == first
    assert raw(fhir_open, f"/Binary/{id}/_history/1").headers["content-type"] == PDF
    assert raw(fhir_open, f"/Binary/{id}/_history/2").content == second
    assert raw(fhir_open, f"/Binary/{id}/_history/2").headers["content-type"] == "image/jpeg"
    assert raw(fhir_open, f"/Binary/{id}").content == third
    old = fhir_open.get(f"/Binary/{id}/_history/1").json()
    assert base64.b64decode(old["data"]) == first
    history = fhir_open.get(f"/Binary/{id}/_history").json()["entry"]
    assert [e["resource"]["meta"]["versionId"] for e in history] == ["3", "2", "1"]
    assert all("data" not in e["resource"] for e in history)


def test_a_client_chosen_id_and_a_patch(fhir_open: httpx.Client) -> None:
    id = f"doc-{uuid.uuid4().hex[:12]}"
    content = some_bytes(50_000, 8)
    created = upload(fhir_open, content, id=id)
    assert created.status_code == 201, created.text
    patched = fhir_open.patch(
        f"/Binary/{id}",
        json=[{"op": "replace", "path": "/contentType", "value": "image/gif"}],
        headers={"content-type": "application/json-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    read = raw(fhir_open, f"/Binary/{id}", "image/gif")
    assert read.content == content  # the patch kept the content, as a new version
    assert read.headers["content-type"] == "image/gif"
    assert read.headers["etag"] == 'W/"2"'


def test_delete_then_read_is_gone(fhir_open: httpx.Client) -> None:
    content = some_bytes(70_000, 9)
    id = upload(fhir_open, content).json()["id"]
    assert fhir_open.delete(f"/Binary/{id}").status_code == 204
    for accept in (PDF, "application/fhir+json"):
        gone = raw(fhir_open, f"/Binary/{id}", accept)
        assert gone.status_code == 410
        assert gone.json()["resourceType"] == "OperationOutcome"
    assert raw(fhir_open, f"/Binary/{id}/_history/2").status_code == 410
    assert raw(fhir_open, f"/Binary/{id}/_history/1").content == content  # history keeps it
    assert raw(fhir_open, "/Binary/no-such-binary").status_code == 404


def test_conditional_writes(fhir_open: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    content = some_bytes(40_000, 10)
    first = fhir_open.post(
        "/Binary",
        content=content,
        headers={"content-type": PDF, "if-none-exist": f"_id=cond-{tag}"},
    )
    assert first.status_code == 201, first.text
    id = first.json()["id"]
    again = fhir_open.put(
        f"/Binary?_id={id}", content=content[::-1], headers={"content-type": "text/plain"}
    )
    assert again.status_code == 200, again.text
    assert raw(fhir_open, f"/Binary/{id}", "text/plain").content == content[::-1]


def test_a_transaction_reads_its_own_binary(fhir_open: httpx.Client) -> None:
    id = f"tx-{uuid.uuid4().hex[:12]}"
    content = some_bytes(CHUNK_SIZE + 1, 12)
    data = base64.b64encode(content).decode()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Binary", "id": id, "contentType": PDF, "data": data},
                "request": {"method": "PUT", "url": f"Binary/{id}"},
            },
            {"request": {"method": "GET", "url": f"Binary/{id}"}},
        ],
    }
    response = fhir_open.post("/", json=bundle)
    assert response.status_code == 200, response.text
    put, get = response.json()["entry"]
    assert put["response"]["status"].startswith("201")
    assert get["resource"]["data"] == data  # read inside the transaction, before commit
    assert raw(fhir_open, f"/Binary/{id}").content == content


# streaming: memory stays flat while tens of megabytes go in and out


STREAMED = 60 * MIB  # under the default limit (64 MiB)
MEMORY_BOUND = 8 * MIB  # what one upload or download may add to the server's Python heap


def generated(size: int, digest: Any) -> Iterator[bytes]:
    """``size`` bytes in pieces of 1 MiB, made as they are sent (and hashed)."""
    rng = random.Random(size)
    for start in range(0, size, MIB):
        piece = rng.randbytes(min(MIB, size - start))
        digest.update(piece)
        yield piece


@contextlib.contextmanager
def heap_growth() -> Iterator[list[int]]:
    """The peak growth of the traced Python heap while the block runs, in bytes."""
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    growth: list[int] = []
    yield growth
    growth.append(tracemalloc.get_traced_memory()[1] - current)


def test_large_binaries_are_streamed(fhir_open: httpx.Client) -> None:
    sent = hashlib.sha256()
    received = hashlib.sha256()
    size = 0
    tracemalloc.start()
    try:
        with heap_growth() as upload_growth:
            response = fhir_open.post(
                "/Binary", content=generated(STREAMED, sent), headers={"content-type": PDF}
            )
        assert response.status_code == 201, response.text
        id = response.json()["id"]
        with (
            heap_growth() as download_growth,
            fhir_open.stream("GET", f"/Binary/{id}", headers={"accept": PDF}) as download,
        ):
            assert download.status_code == 200
            for piece in download.iter_bytes():
                received.update(piece)
                size += len(piece)
    finally:
        tracemalloc.stop()
    assert size == STREAMED
    assert received.digest() == sent.digest()
    # loaded whole, the content alone (60 MiB) would be on the heap
    assert upload_growth[0] < MEMORY_BOUND, f"the upload grew the heap by {upload_growth[0]}"
    assert download_growth[0] < MEMORY_BOUND, f"the download grew it by {download_growth[0]}"

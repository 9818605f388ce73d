"""Binary content out of the resource row, streamed in and out (R4 binary.html#rest).

Every Binary version's ``data`` is stored in the store's binary tables, in chunks of
`CHUNK_SIZE`, not in its JSON: the stored JSON is the Binary without ``data``, tagged
``SUBSETTED`` (R4's tag for a resource with elements left out) when it has content. Search,
history and write responses return that JSON as it is. A FHIR read puts ``data`` back (the
whole content in memory, base64); a raw read (`RawContent`) streams the chunks, so the raw
read is the path for large documents. A raw write's body is taken by `Upload`: counted,
hashed and spooled to a temporary file as it arrives, never whole in memory, and refused
with 413 once it passes the limit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import IO, Protocol

from samhandling.platform.fhir.content import dumps, loads
from samhandling.platform.fhir.elements import SUBSETTED
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.storage import BinaryInfo, ResourceVersion

BINARY = "Binary"
CHUNK_SIZE = 256 * 1024  # bytes per stored chunk: what a raw read holds in memory at a time
DEFAULT_MAX_BINARY_BYTES = 64 * 1024 * 1024
SPOOL_IN_MEMORY = 1024 * 1024  # an upload up to this size is spooled in memory, larger to disk
OCTET_STREAM = "application/octet-stream"


class ContentSource(Protocol):
    """Where stored content is read from: a `Store`, or a `StoreTransaction` (its writes)."""

    async def binary_info(self, id: str, version: int) -> BinaryInfo | None: ...

    async def binary_chunk(self, id: str, version: int, seq: int) -> bytes: ...


class Content:
    """The bytes of a Binary on their way to storage (in memory or in a temporary file), with
    their size and digests."""

    def __init__(self, file: IO[bytes], size: int, sha1: bytes, sha256: bytes) -> None:
        self._file = file
        self.size = size
        self.sha1 = sha1
        self.sha256 = sha256

    @classmethod
    def of(cls, data: bytes) -> Content:
        """Content held in memory (a JSON write's decoded ``data``)."""
        sha1 = hashlib.sha1(data, usedforsecurity=False).digest()
        return cls(io.BytesIO(data), len(data), sha1, hashlib.sha256(data).digest())

    @property
    def info(self) -> BinaryInfo:
        """What the store records of it."""
        return BinaryInfo(self.size, self.sha1, self.sha256, -(-self.size // CHUNK_SIZE))

    def chunks(self) -> Iterator[bytes]:
        """The bytes in chunks of `CHUNK_SIZE`, read one at a time."""
        self._file.seek(0)
        while chunk := self._file.read(CHUNK_SIZE):
            yield chunk

    def close(self) -> None:
        """Release the memory or the temporary file."""
        self._file.close()


async def receive(stream: AsyncIterable[bytes], limit: int) -> Content:
    """Take ``stream`` into a temporary file (in memory while small), counting and hashing
    as it arrives; 413 as soon as it passes ``limit`` bytes (the rest is never read)."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - Content owns it
    sha1 = hashlib.sha1(usedforsecurity=False)
    sha256 = hashlib.sha256()
    size = 0
    try:
        async for piece in stream:
            size += len(piece)
            if size > limit:
                raise too_large(limit)
            sha1.update(piece)
            sha256.update(piece)
            file.write(piece)
    except BaseException:
        file.close()
        raise
    return Content(file, size, sha1.digest(), sha256.digest())


class Upload:
    """A request body that is to become a Binary's content. It is received (once) when the
    interaction runs, after the caller is authorised, so a refused caller's body is never
    read; ``declared`` (Content-Length) and ``sha256`` (a digest the client sent) are
    checked."""

    def __init__(
        self,
        stream: AsyncIterable[bytes],
        limit: int,
        declared: int | None = None,
        sha256: bytes | None = None,
    ) -> None:
        self._stream = stream
        self._limit = limit
        self._declared = declared
        self._sha256 = sha256
        self._content: Content | None = None

    async def receive(self) -> Content:
        """The content, received on the first call."""
        if self._content is None:
            if self._declared is not None and self._declared > self._limit:
                raise too_large(self._limit)
            content = await receive(self._stream, self._limit)
            if self._sha256 is not None and content.sha256 != self._sha256:
                content.close()
                raise FhirError.of(
                    400, "invalid", "the body's SHA-256 is not the one its digest header names"
                )
            self._content = content
        return self._content

    def close(self) -> None:
        """Release what was received."""
        if self._content is not None:
            self._content.close()


def too_large(limit: int) -> FhirError:
    """413 for content over ``limit`` bytes."""
    return FhirError.of(413, "too-costly", f"the Binary's content is larger than {limit} bytes")


def raw_resource(content_type: str, security_context: str | None, id: str | None) -> dict:
    """The Binary a raw create or update stands for (its content comes separately)."""
    body: dict = {"resourceType": BINARY}
    if id is not None:
        body["id"] = id
    body["contentType"] = content_type
    if security_context:
        body["securityContext"] = {"reference": security_context}
    return body


def split(body: dict, content: Content | None, limit: int) -> tuple[dict, Content | None]:
    """A validated Binary as it is stored, and its content: ``data`` (decoded) or the raw
    ``content`` taken out, and the SUBSETTED tag set exactly when there is content (a
    client's own SUBSETTED tag is dropped: the tag says where the bytes are)."""
    data = body.get("data")
    if isinstance(data, str):
        content = Content.of(_decode(data))
    if content is not None and content.size > limit:
        raise too_large(limit)
    if content is not None and content.size == 0:
        content = None  # R4 JSON cannot hold empty data: no content
    stored = {key: value for key, value in body.items() if key != "data"}
    meta = dict(stored.get("meta") or {})
    tags = [tag for tag in meta.get("tag") or () if not _is_marker(tag)]
    if content is not None:
        tags.append(SUBSETTED)
    if tags:
        meta["tag"] = tags
    else:
        meta.pop("tag", None)
    if meta:
        stored["meta"] = meta
    else:
        stored.pop("meta", None)
    return stored, content


def has_content(stored: bytes | None) -> bool:
    """Whether a stored Binary's content is in the binary tables (it is tagged SUBSETTED)."""
    if stored is None or b"SUBSETTED" not in stored:
        return False
    resource = loads(stored)
    return isinstance(resource, dict) and any(map(_is_marker, _tags(resource)))


async def read_all(source: ContentSource, id: str, version: int) -> bytes | None:
    """All of a Binary version's stored content (in memory), or None when it has none."""
    info = await source.binary_info(id, version)
    if info is None:
        return None
    return b"".join([chunk async for chunk in chunks(source, id, version, info.chunks)])


async def chunks(source: ContentSource, id: str, version: int, count: int) -> AsyncIterator[bytes]:
    """The stored chunks of a Binary version, one statement each."""
    for seq in range(count):
        yield await source.binary_chunk(id, version, seq)


async def attach(source: ContentSource, version: ResourceVersion, shown: bytes) -> bytes:
    """``shown`` (a stored Binary's JSON as the caller may see it) with ``data`` put back
    and the SUBSETTED tag gone; unchanged when the version has no stored content."""
    if not has_content(version.content):
        return shown
    data = await read_all(source, version.id, version.version)
    if data is None:
        return shown
    resource = loads(shown)
    assert isinstance(resource, dict)
    _drop_marker(resource)
    resource.pop("data", None)
    head = dumps(resource)  # an object: ends with "}"; data is the last element of a Binary
    return b"".join((head[:-1], b',"data":"', base64.b64encode(data), b'"}'))


@dataclass(frozen=True, slots=True)
class RawContent:
    """A Binary's content as a raw read sends it."""

    content_type: str
    size: int
    sha256: bytes
    chunks: Callable[[], AsyncIterator[bytes]]  # a fresh iterator over the bytes


async def raw_content(source: ContentSource, version: ResourceVersion, shown: dict) -> RawContent:
    """The content of a Binary version, in the media type ``shown`` (the Binary as the
    caller may see it) names: streamed from the binary tables, or (a Binary stored before
    they existed, with ``data`` in its JSON) from memory."""
    content_type = shown.get("contentType")
    if not isinstance(content_type, str) or not content_type:
        content_type = OCTET_STREAM
    if has_content(version.content):
        info = await source.binary_info(version.id, version.version)
        if info is not None:
            id, number, count = version.id, version.version, info.chunks
            return RawContent(
                content_type, info.size, info.sha256, lambda: chunks(source, id, number, count)
            )
    stored = loads(version.content) if version.content is not None else {}
    data = stored.get("data") if isinstance(stored, dict) else None
    raw = _decode(data) if isinstance(data, str) else b""
    return RawContent(content_type, len(raw), hashlib.sha256(raw).digest(), lambda: _once(raw))


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


def _decode(data: str) -> bytes:
    """base64Binary (whitespace allowed) as bytes; 400 when it is not base64."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise FhirError.of(400, "invalid", "Binary.data is not base64", "Binary.data") from None


def _tags(resource: dict) -> list:
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    return tags if isinstance(tags, list) else []


def _is_marker(tag: object) -> bool:
    return (
        isinstance(tag, dict)
        and tag.get("system") == SUBSETTED["system"]
        and tag.get("code") == SUBSETTED["code"]
    )


def _drop_marker(resource: dict) -> None:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return
    tags = [tag for tag in _tags(resource) if not _is_marker(tag)]
    if tags:
        meta["tag"] = tags
    else:
        meta.pop("tag", None)

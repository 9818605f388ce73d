"""The FHIR engine: the interactions on plain Python values, independent of HTTP.

Every write validates, then runs inside one store transaction that locks the row it changes,
so version checks (If-Match) and creates of client-chosen ids are decided by the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from samhandling.platform.fhir import access, binaries
from samhandling.platform.fhir.access import (
    NO_TRAIL,
    OPEN_ACCESS,
    AccessControl,
    Accessed,
    Touched,
    Trail,
)
from samhandling.platform.fhir.binaries import BINARY, DEFAULT_MAX_BINARY_BYTES, Content
from samhandling.platform.fhir.bindings import BindingRules, CodeValidator
from samhandling.platform.fhir.content import loads, stamp
from samhandling.platform.fhir.errors import FhirError, Issue, gone, not_found
from samhandling.platform.fhir.ids import new_id
from samhandling.platform.fhir.operations import Operation, OperationRegistry
from samhandling.platform.fhir.patch import PatchError, apply_fhirpath_patch, apply_json_patch
from samhandling.platform.fhir.search.executor import SearchExecutor, SearchPage
from samhandling.platform.fhir.search.extract import extract
from samhandling.platform.fhir.search.params import SearchRegistry, parameter_id
from samhandling.platform.fhir.search.query import (
    Chain,
    Criterion,
    Has,
    Leaf,
    SearchRequest,
    parse_search,
)
from samhandling.platform.fhir.search.reindex import enqueue as enqueue_reindex
from samhandling.platform.fhir.search.terminology import (
    TerminologyResolver,
    needs_terminology,
)
from samhandling.platform.fhir.search.terminology import resolve as resolve_terminology
from samhandling.platform.fhir.storage import (
    BinaryInfo,
    HistoryQuery,
    HistoryRow,
    ResourceVersion,
    Store,
    StoreTransaction,
)
from samhandling.platform.fhir.validation import check_id, check_resource_type, validate_resource

JSON_PATCH = "json-patch"
FHIRPATH_PATCH = "fhirpath-patch"
_TICK = timedelta(microseconds=1)
_SEARCH_PARAMETER = "SearchParameter"

# A content rule a service adds for one resource type: the issues it finds (errors refuse
# the write with 422; warnings are not reported yet).
WriteCheck = Callable[[dict], list[Issue]]
# What search may see of a resource of one type: the resource, or a copy with elements left
# out (they are then not indexed, so no search, chain or _has can match on them).
IndexView = Callable[[dict], dict]
# A rule a service adds for transaction Bundles as a whole (entries that must agree with
# each other): given the Bundle as sent, before anything is written, the issues it finds
# (errors refuse the whole transaction with 422).
TransactionCheck = Callable[[dict], list[Issue]]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write produced: the new version, and whether it (re)created the resource."""

    resource: ResourceVersion
    created: bool
    warnings: tuple[Issue, ...] = ()  # what validation found but let pass (bindings)
    previous: ResourceVersion | None = None  # the version it replaced


@dataclass(frozen=True, slots=True)
class Preconditions:
    """HTTP preconditions on a write: ``If-Match`` version, ``If-None-Match: *``."""

    if_match: int | None = None
    if_none_match_any: bool = False


NO_PRECONDITIONS = Preconditions()


def _now() -> datetime:
    return datetime.now(UTC)


class FhirEngine:
    """Create, read, update, patch, delete and history over a `Store`."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime] = _now,
        registry: SearchRegistry | None = None,
        conditional_delete_max: int = 1,
        max_binary_bytes: int = DEFAULT_MAX_BINARY_BYTES,
    ) -> None:
        self.store = store
        self._clock = clock
        self.registry = registry or SearchRegistry()
        self.executor = SearchExecutor(store.backend)
        self.conditional_delete_max = conditional_delete_max
        self.max_binary_bytes = max_binary_bytes  # the largest Binary content accepted
        self._parameters_generation: int | None = None
        self.reindexing = False  # a reindex job is queued or running (set by the worker)
        # base URLs clients have addressed this server by: absolute references under them
        # are indexed as local references
        self.local_bases: set[str] = set()
        self.access: AccessControl = OPEN_ACCESS  # the platform's policy, once it starts
        self.trail: Trail = NO_TRAIL  # told of every write, in its transaction
        self._write_checks: dict[str, list[WriteCheck]] = {}
        self._index_views: dict[str, IndexView] = {}
        self.transaction_checks: list[TransactionCheck] = []  # run by process_bundle
        self.operations = OperationRegistry()  # the $operations services add
        # codes for the token modifiers :in, :not-in, :below, :above (a terminology service)
        self.terminology: TerminologyResolver | None = None
        self.bindings = BindingRules()  # R4's and the services' terminology bindings
        self.codes: CodeValidator | None = None  # checks them on write, once one is set

    def add_operation(self, operation: Operation) -> None:
        """Offer ``operation`` through the REST API (and in the CapabilityStatement)."""
        self.operations.add(operation)

    def add_write_check(self, type: str, check: WriteCheck) -> None:
        """Run ``check`` on every resource of ``type`` written from now on."""
        self._write_checks.setdefault(type, []).append(check)

    def add_transaction_check(self, check: TransactionCheck) -> None:
        """Run ``check`` on every transaction Bundle from now on: it is given the Bundle as
        the client sent it (fullUrls and references not yet rewritten), after its entries
        parsed and before anything is written; errors from any check refuse the whole
        transaction with 422 and all their issues. A check decides itself which Bundles
        it concerns (e.g. by ``Bundle.meta.profile``) and returns no issues for others."""
        self.transaction_checks.append(check)

    def set_index_view(self, type: str, view: IndexView) -> None:
        """Index resources of ``type`` as ``view`` shows them (from the next write on)."""
        self._index_views[type] = view

    async def validate(
        self, resource: object, type: str, id: str | None = None
    ) -> tuple[dict, tuple[Issue, ...]]:
        """Validate a resource for a write: structure, content, the added checks, then the
        terminology bindings; the resource and the warnings (errors raise 422)."""
        body = validate_resource(resource, type, id=id)
        checks = self._write_checks.get(type)
        issues = [issue for check in checks for issue in check(body)] if checks else []
        if self.codes is not None:
            issues.extend(await self.bindings.check(type, body, self.codes))
        if not issues:
            return body, ()
        errors = [issue for issue in issues if issue.severity in ("error", "fatal")]
        if errors:
            raise FhirError(422, errors)
        return body, tuple(issues)

    async def refresh_search_parameters(self) -> bool:
        """Re-read the stored SearchParameter resources if any changed; True if reloaded."""
        rows = await self.store.fetch(
            "SELECT MAX(seq) FROM resource_history WHERE type = 'SearchParameter'", []
        )
        generation = rows[0][0] or 0
        if generation == self._parameters_generation:
            return False
        stored = await self.store.fetch(
            "SELECT content FROM resource WHERE type = 'SearchParameter' AND NOT deleted", []
        )
        definitions = [loads(bytes(row[0])) for row in stored]
        self.registry = SearchRegistry(d for d in definitions if isinstance(d, dict))
        self._parameters_generation = generation
        return True

    async def _search_parameter_changed(
        self, t: StoreTransaction, id: str, before: bytes | None, after: dict | None
    ) -> None:
        """Queue reindexing of the types a SearchParameter was or is defined on."""
        bases: set[str] = set()
        for definition in (loads(before) if before else None, after):
            if isinstance(definition, dict) and isinstance(definition.get("base"), list):
                bases.update(b for b in definition["base"] if isinstance(b, str))
        if bases:
            if bases & {"Resource", "DomainResource"}:
                bases = {"*"}
            await enqueue_reindex(t, self.store.backend, f"SearchParameter/{id}", sorted(bases))

    def index(self, type: str, body: dict) -> dict[str, list[tuple]]:
        """The search index rows of a resource about to be stored."""
        view = self._index_views.get(type)
        return extract(self.registry, type, view(body) if view else body, self.local_bases)

    @asynccontextmanager
    async def transaction(
        self, tx: StoreTransaction | None = None
    ) -> AsyncIterator[StoreTransaction]:
        """Join ``tx`` when given (a Bundle transaction), else open a new store transaction."""
        if tx is not None:
            yield tx
        else:
            async with self.store.transaction() as new_tx:
                yield new_tx

    # reads

    async def read(self, type: str, id: str, tx: StoreTransaction | None = None) -> ResourceVersion:
        """The current version; 404 if it never existed, 410 if deleted."""
        check_resource_type(type)
        check_id(id)
        current = await (tx.current(type, id, lock=False) if tx else self.store.read(type, id))
        if current is None:
            raise not_found(type, id)
        if current.deleted:
            raise gone(type, id, current.version)
        return current

    async def vread(
        self, type: str, id: str, version: str, tx: StoreTransaction | None = None
    ) -> ResourceVersion:
        """A specific version; 404 if unknown, 410 if that version is a deletion."""
        check_resource_type(type)
        check_id(id)
        if not (version.isascii() and version.isdigit()) or len(version) > 9:
            raise not_found(type, f"{id}/_history/{version}")
        number = int(version)
        found = await (tx.vread(type, id, number) if tx else self.store.vread(type, id, number))
        if found is None:
            raise not_found(type, f"{id}/_history/{version}")
        if found.deleted:
            raise gone(type, id, found.version)
        return found

    async def history(
        self, query: HistoryQuery, tx: StoreTransaction | None = None
    ) -> list[HistoryRow]:
        """Versions newest first (one more than ``query.count`` when there is a next page)."""
        if query.type is not None:
            check_resource_type(query.type)
        if query.id is not None:
            check_id(query.id)
        return await (tx.history(query) if tx else self.store.history(query))

    async def binary_info(
        self, version: ResourceVersion, tx: StoreTransaction | None = None
    ) -> BinaryInfo | None:
        """Size and digests of a Binary version's content (None: it has none stored)."""
        if version.type != BINARY or not binaries.has_content(version.content):
            return None
        return await (tx or self.store).binary_info(version.id, version.version)

    async def binary_data(
        self, version: ResourceVersion, tx: StoreTransaction | None = None
    ) -> bytes | None:
        """All of a Binary version's content, in memory (for checks of small documents; a
        raw read streams instead); None when it has none."""
        if version.type != BINARY or not binaries.has_content(version.content):
            return None
        return await binaries.read_all(tx or self.store, version.id, version.version)

    def parse_search(
        self, types: tuple[str, ...], items: list[tuple[str, str]], *, strict: bool = False
    ) -> SearchRequest:
        """Parse search parameters for ``types`` (empty: every type)."""
        for type_name in types:
            check_resource_type(type_name)
        return parse_search(self.registry, types, items, strict=strict)

    async def search(
        self, request: SearchRequest, base: str = "", tx: StoreTransaction | None = None
    ) -> SearchPage:
        """One page of a search (inside ``tx`` when given: it sees the transaction's writes)."""
        if needs_terminology(request):
            await resolve_terminology(request, self.terminology)
        page = await self.executor.search(tx if tx is not None else self.store, request, base)
        if self.reindexing and any(_custom(c) for c in request.criteria):
            page.warnings.append(
                "the index of a custom search parameter is being rebuilt; "
                "results may be incomplete until `samhandling reindex --status` reports done"
            )
        return page

    # conditional interactions

    async def matching(
        self, type: str, criteria: list[tuple[str, str]], tx: StoreTransaction, limit: int
    ) -> list[str]:
        """Ids of up to ``limit`` resources matching ``criteria``, under a lock on them.

        The lock (keyed by the type and the normalised criteria) is held until ``tx`` ends,
        so concurrent conditional writes with the same criteria run one after the other and
        each sees what the previous one committed.
        """
        criteria = [(k, v) for k, v in criteria if k not in ("_format", "_pretty")]
        request = self.parse_search((type,), criteria, strict=True)
        if not request.criteria:
            raise FhirError.of(400, "invalid", "a conditional interaction needs search criteria")
        if request.includes or request.sort:
            raise FhirError.of(
                400, "invalid", "conditional criteria cannot use _include, _revinclude or _sort"
            )
        if needs_terminology(request):
            await resolve_terminology(request, self.terminology)
        await tx.lock(parameter_id(f"{type}?{urlencode(sorted(criteria))}"))
        return [id for _, id in await self.executor.ids(tx, request, limit)]

    async def conditional_create(
        self,
        type: str,
        resource: object,
        criteria: list[tuple[str, str]],
        tx: StoreTransaction,
        *,
        context: object = None,
        content: Content | None = None,
    ) -> WriteResult:
        """Create unless a resource matches ``criteria`` (If-None-Exist): 0 -> create, 1 ->
        that resource (``created`` False), more -> 412."""
        body, warnings = await self.prepare_create(type, resource)
        existing = await self.existing_match(type, criteria, tx)
        if existing is not None:
            return WriteResult(existing, created=False)
        return await self.create(
            type, body, tx, warnings=warnings, context=context, content=content
        )

    async def existing_match(
        self, type: str, criteria: list[tuple[str, str]], tx: StoreTransaction
    ) -> ResourceVersion | None:
        """If-None-Exist: the one resource matching ``criteria``; None when none does, 412
        when several do."""
        found = await self.matching(type, criteria, tx, 2)
        if len(found) > 1:
            raise _several("If-None-Exist", type, criteria)
        return await self.read(type, found[0], tx) if found else None

    async def conditional_target(
        self, method: str, type: str, criteria: list[tuple[str, str]], tx: StoreTransaction
    ) -> list[str]:
        """The ids a conditional PUT, PATCH or DELETE applies to (412 when too many match)."""
        limit = self.conditional_delete_max if method == "DELETE" else 1
        found = await self.matching(type, criteria, tx, limit + 1)
        if len(found) > limit:
            raise _several(f"conditional {method}", type, criteria)
        return found

    async def resolve_reference(self, reference: str, tx: StoreTransaction) -> str:
        """``Type?criteria`` (a conditional reference) as ``Type/id`` of its one match."""
        type, _, query = reference.partition("?")
        check_resource_type(type)
        found = await self.matching(type, parse_qsl(query, keep_blank_values=True), tx, 2)
        if len(found) != 1:
            raise FhirError.of(
                412,
                "conflict" if found else "not-found",
                f"conditional reference {reference!r} matches {len(found)} resources, not one",
            )
        return f"{type}/{found[0]}"

    # writes

    async def prepare_create(
        self, type: str, resource: object, id: str | None = None
    ) -> tuple[dict, tuple[Issue, ...]]:
        """Validate a resource for create (a client-sent id is ignored, as the spec says)."""
        check_resource_type(type)
        if isinstance(resource, dict) and "id" in resource:
            resource = {k: v for k, v in resource.items() if k != "id"}
        return await self.validate(resource, type)

    async def create(
        self,
        type: str,
        resource: object,
        tx: StoreTransaction | None = None,
        *,
        warnings: tuple[Issue, ...] | None = None,
        context: object = None,
        content: Content | None = None,
    ) -> WriteResult:
        """Create with a new server-assigned id (``warnings`` given: already validated);
        a Binary's ``content`` given: its raw content (the resource has no ``data``)."""
        if warnings is None:
            body, warnings = await self.prepare_create(type, resource)
        else:
            assert isinstance(resource, dict)
            body = resource
        body, content = self._split(type, body, content)
        async with self.transaction(tx) as t:
            await self.access.permit_write(context, type, body, None)
            version = ResourceVersion(type, new_id(), 1, self._clock(), None)
            version = _with_content(version, body)
            if not await t.insert_new(version, "POST", self.index(type, body)):
                raise FhirError.of(409, "duplicate", f"{type}/{version.id} exists already")
            await _store_content(t, version, content)
            if type == _SEARCH_PARAMETER:
                await self._search_parameter_changed(t, version.id, None, body)
            written = WriteResult(version, created=True, warnings=warnings)
            await self._tell_trail(t, context, access.CREATE, written)
            return written

    async def create_many(
        self, items: list[tuple[str, str, dict]], tx: StoreTransaction, *, context: object = None
    ) -> list[WriteResult]:
        """Create already validated resources with pre-assigned new ids in one round trip."""
        split = [self._split(type, body, None) for type, _, body in items]
        items = [(type, id, body) for (type, id, _), (body, _) in zip(items, split, strict=True)]
        for type, _, body in items:
            await self.access.permit_write(context, type, body, None)
        now = self._clock()
        versions = [
            _with_content(ResourceVersion(t, i, 1, now, None), body) for t, i, body in items
        ]
        indexes = [self.index(t, body) for t, _, body in items]
        await tx.insert_many_new(versions, "POST", indexes)
        for version, (_, content) in zip(versions, split, strict=True):
            await _store_content(tx, version, content)
        for type, id, body in items:
            if type == _SEARCH_PARAMETER:
                await self._search_parameter_changed(tx, id, None, body)
        results = [WriteResult(v, created=True) for v in versions]
        for written in results:
            await self._tell_trail(tx, context, access.CREATE, written)
        return results

    async def update(
        self,
        type: str,
        id: str,
        resource: object,
        preconditions: Preconditions = NO_PRECONDITIONS,
        tx: StoreTransaction | None = None,
        *,
        context: object = None,
        content: Content | None = None,
    ) -> WriteResult:
        """Update, or create with the client-chosen ``id`` when it does not exist (a Binary's
        ``content`` given: its raw content)."""
        check_resource_type(type)
        check_id(id)
        body, warnings = await self.validate(resource, type, id=id)
        body, content = self._split(type, body, content)
        index = self.index(type, body)
        async with self.transaction(tx) as t:
            current = await t.current(type, id)
            if current is None:
                _check_preconditions(preconditions, None)
                await self.access.permit_write(context, type, body, None)
                first = _with_content(ResourceVersion(type, id, 1, self._clock(), None), body)
                if await t.insert_new(first, "PUT", index):
                    await _store_content(t, first, content)
                    if type == _SEARCH_PARAMETER:
                        await self._search_parameter_changed(t, id, None, body)
                    written = WriteResult(first, created=True, warnings=warnings)
                    await self._tell_trail(t, context, access.UPDATE, written)
                    return written
                current = await t.current(type, id)  # a concurrent request created it first
                assert current is not None
            _check_preconditions(preconditions, current)
            await self.access.permit_write(context, type, body, current.content)
            new = self._next_version(current, body)
            await t.replace(new, "PUT", current.version, index)
            await _store_content(t, new, content)
            if type == _SEARCH_PARAMETER:
                await self._search_parameter_changed(t, id, current.content, body)
            written = WriteResult(new, created=current.deleted, warnings=warnings, previous=current)
            await self._tell_trail(t, context, access.UPDATE, written)
            return written

    async def patch(
        self,
        type: str,
        id: str,
        patch: object,
        patch_format: str,
        preconditions: Preconditions = NO_PRECONDITIONS,
        tx: StoreTransaction | None = None,
        *,
        context: object = None,
    ) -> WriteResult:
        """Apply a JSON Patch or FHIRPath Patch to the current version."""
        check_resource_type(type)
        check_id(id)
        async with self.transaction(tx) as t:
            current = await t.current(type, id)
            if current is None:
                raise not_found(type, id)
            if current.deleted:
                raise gone(type, id, current.version)
            _check_preconditions(preconditions, current)
            original = loads(await self._with_data(current, t))
            try:
                if patch_format == JSON_PATCH:
                    patched = apply_json_patch(original, patch)
                else:
                    patched = apply_fhirpath_patch(original, patch)
            except PatchError as exc:
                raise FhirError.of(
                    422, "processing", f"patch failed: {exc.message}", exc.expression
                ) from None
            try:
                body, warnings = await self.validate(patched, type, id=id)
            except FhirError as error:  # the request was well-formed; its result is not
                raise FhirError(422, error.issues) from None
            body, content = self._split(type, body, None)
            await self.access.permit_write(context, type, body, current.content)
            new = self._next_version(current, body)
            await t.replace(new, "PATCH", current.version, self.index(type, body))
            await _store_content(t, new, content)
            if type == _SEARCH_PARAMETER:
                await self._search_parameter_changed(t, id, current.content, body)
            written = WriteResult(new, created=False, warnings=warnings, previous=current)
            await self._tell_trail(t, context, access.PATCH, written)
            return written

    async def delete(
        self,
        type: str,
        id: str,
        preconditions: Preconditions = NO_PRECONDITIONS,
        tx: StoreTransaction | None = None,
        *,
        context: object = None,
    ) -> WriteResult | None:
        """Delete as a versioned tombstone; None when there was nothing (left) to delete."""
        check_resource_type(type)
        check_id(id)
        async with self.transaction(tx) as t:
            current = await t.current(type, id)
            if current is None or current.deleted:
                if preconditions.if_match is not None:
                    _check_preconditions(preconditions, current)
                return None
            _check_preconditions(preconditions, current)
            await self.access.permit_write(context, type, None, current.content)
            tombstone = ResourceVersion(type, id, current.version + 1, self._later(current), None)
            await t.replace(tombstone, "DELETE", current.version)
            if type == _SEARCH_PARAMETER:
                await self._search_parameter_changed(t, id, current.content, None)
            written = WriteResult(tombstone, created=False, previous=current)
            await self._tell_trail(t, context, access.DELETE, written)
            return written

    def _split(self, type: str, body: dict, content: Content | None) -> tuple[dict, Content | None]:
        """A validated resource as stored, and the Binary content kept out of its row."""
        if type != BINARY:
            assert content is None, "only a Binary has raw content"
            return body, None
        return binaries.split(body, content, self.max_binary_bytes)

    async def _with_data(self, version: ResourceVersion, tx: StoreTransaction) -> bytes:
        """A stored version's JSON, a Binary's ``data`` put back."""
        assert version.content is not None
        if version.type != BINARY:
            return version.content
        return await binaries.attach(tx, version, version.content)

    async def _tell_trail(
        self, tx: StoreTransaction, context: object, kind: str, written: WriteResult
    ) -> None:
        """Tell the trail of a write, inside its transaction."""
        new, previous = written.resource, written.previous
        touched = [Touched(new.type, new.id, new.version, new.content)]
        if previous is not None and previous.content is not None:
            touched.append(Touched(previous.type, previous.id, previous.version, previous.content))
        status = 201 if written.created else (204 if new.deleted else 200)
        event = Accessed(context, kind, new.type, f"{new.type}/{new.id}", None, touched, status)
        await self.trail.record(event, tx)

    def _later(self, current: ResourceVersion) -> datetime:
        """Now, but never at or before the current version's time (clocks of workers differ)."""
        return max(self._clock(), current.last_updated + _TICK)

    def _next_version(self, current: ResourceVersion, body: dict) -> ResourceVersion:
        version = ResourceVersion(
            current.type, current.id, current.version + 1, self._later(current), None
        )
        return _with_content(version, body)


async def _store_content(
    tx: StoreTransaction, version: ResourceVersion, content: Content | None
) -> None:
    """Store a Binary version's content (in the transaction that stores the version)."""
    if content is not None:
        await tx.write_binary(version.id, version.version, content.info, content.chunks())


def _with_content(version: ResourceVersion, body: dict) -> ResourceVersion:
    content = stamp(body, version.id, version.version, version.last_updated)
    return ResourceVersion(version.type, version.id, version.version, version.last_updated, content)


def _custom(criterion: Criterion) -> bool:
    """Whether a criterion uses a custom SearchParameter (at any depth)."""
    if isinstance(criterion, Leaf):
        return criterion.param is not None and criterion.param.custom
    if isinstance(criterion, Chain):
        return criterion.param.custom or any(_custom(c) for c in criterion.inner.values())
    if isinstance(criterion, Has):
        return criterion.reference.custom or _custom(criterion.inner)
    return False


def _several(what: str, type: str, criteria: list[tuple[str, str]]) -> FhirError:
    return FhirError.of(
        412,
        "multiple-matches",
        f"{what}: more than one {type} matches {urlencode(criteria)!r}",
    )


def _check_preconditions(preconditions: Preconditions, current: ResourceVersion | None) -> None:
    exists = current is not None and not current.deleted
    wanted = preconditions.if_match
    if wanted is not None and (current is None or current.version != wanted):
        have = f"version {current.version}" if current is not None else "no version"
        raise FhirError.of(
            412, "conflict", f"If-Match wanted version {wanted}; the server has {have}"
        )
    if preconditions.if_none_match_any and exists:
        raise FhirError.of(412, "conflict", "If-None-Match: * but the resource exists")

"""The ``persisted`` stage: trusted documents (a manifest) and automatic persisted queries (APQ).

A request may name its document instead of sending it: by
``extensions.persistedQuery.sha256Hash`` (Apollo's protocol, version 1) or by a
top-level ``documentId`` (``"sha256:<hex>"`` or a manifest's own id). The
document is found in the trusted-documents manifests loaded at start, then in
the APQ store; a request that sends both the hash and the text registers the
text in the APQ store once the hash is verified::

    [persisted_documents]
    manifests = ["persisted-documents.json"]   # Apollo's or Relay's format
    only = true                                 # production: nothing else runs

    [apq]
    enabled = true
    backend = "redis"                           # every replica knows a registered hash

Refusals, each a GraphQL error body:

    PERSISTED_QUERY_NOT_FOUND      a hash neither the manifests nor the APQ store knows (404):
                                   the client sends it again with the text (APQ)
    PERSISTED_QUERY_NOT_SUPPORTED  a hash sent to a gateway without manifests or APQ (400)
    PERSISTED_QUERY_NOT_ALLOWED    ``only = true``: a document not in the manifests (403)
    BAD_REQUEST                    a text whose SHA-256 is not the hash it came with (400)

With ``only = true`` the listed documents are parsed, checked against the
operation limits, validated and estimated once, as the gateway starts
(``PersistedDocuments.prepare``); they stay pinned in the document cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError
from strawberry.http import GraphQLRequestData

from switchyard.errors import BadRequest, ErrorCode, GraphError
from switchyard.lru import ByteLRU
from switchyard.redis_client import fail_fast_redis

if TYPE_CHECKING:
    from switchyard.app import Gateway

logger = logging.getLogger("switchyard.persisted")

APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"
SHA256_PREFIX = "sha256:"
DEFAULT_APQ_BYTES = 16 * 1024 * 1024
ENTRY_OVERHEAD_BYTES = 256
REDIS_CLIENT_NAME = "switchyard-apq"
REDIS_MAX_CONNECTIONS = 8
WARNING_INTERVAL = 10.0


# Errors ------------------------------------------------------------------------------------


class PersistedQueryNotFound(GraphError):
    code = ErrorCode.PERSISTED_QUERY_NOT_FOUND

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class PersistedQueryNotSupported(GraphError):
    code = ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotSupported")


class PersistedQueryNotAllowed(GraphError):
    code = ErrorCode.PERSISTED_QUERY_NOT_ALLOWED

    def __init__(self) -> None:
        super().__init__("Only the gateway's trusted documents may run; this one is not.")


def refusal(error: GraphError) -> Exception:
    """``error`` as the view's edge answers it (a GraphQL error body, its code's status)."""
    from graphql import GraphQLError

    return GraphQLError(error.message, original_error=error)


def refuse_unsupported(extensions: Mapping[str, Any]) -> None:
    """Without the stage (no manifest, APQ off): a request naming a document by hash is told
    so (``PERSISTED_QUERY_NOT_SUPPORTED``), so an APQ client stops sending hashes."""
    if "persistedQuery" in extensions or DOCUMENT_ID in extensions:
        raise refusal(PersistedQueryNotSupported())


# Settings ----------------------------------------------------------------------------------


class PersistedDocumentSettings(BaseModel):
    """``[persisted_documents]``: trusted documents from manifests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manifests: list[Path] = Field(
        default_factory=list,
        description="manifest files (Apollo's persisted-query manifest or Relay's "
        "{id: document}); relative to the config file's folder",
    )
    only: bool = Field(
        False,
        description="refuse every document not in the manifests (PERSISTED_QUERY_NOT_ALLOWED), "
        "APQ registrations included",
    )


class ApqSettings(BaseModel):
    """``[apq]``: automatic persisted queries, registered by clients."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    max_bytes: int = Field(
        DEFAULT_APQ_BYTES,
        ge=0,
        description="bytes of documents kept in process (with redis: the local copy of hits)",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout: float = Field(0.1, gt=0, description="seconds per round trip; slower: a miss")
    key_prefix: str = "switchyard:apq"
    ttl: int = Field(
        86400, ge=0, description="seconds a registration lives in Redis (0: until evicted)"
    )


# Manifests ---------------------------------------------------------------------------------


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    id: str
    body: str
    name: str | None = None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def document_key(identifier: str) -> str:
    """A manifest id or ``documentId`` as looked up: ``sha256:`` dropped, hex lower-cased."""
    if identifier[:7].lower() == SHA256_PREFIX:
        return identifier[7:].lower()
    return identifier


def read_manifest(path: Path) -> list[TrustedDocument]:
    """The documents of an Apollo persisted-query manifest or a Relay ``{id: text}`` map.

    >>> import tempfile, json
    >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    ...     json.dump({"abc": "{ a }"}, f)
    >>> read_manifest(Path(f.name))
    [TrustedDocument(id='abc', body='{ a }', name=None)]
    """
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: a manifest is a JSON object")
    if data.get("format") == APOLLO_MANIFEST_FORMAT:
        if data.get("version") != 1:
            raise ManifestError(f"{path}: only version 1 of {APOLLO_MANIFEST_FORMAT} is known")
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ManifestError(f"{path}: operations must be a list")
        documents = []
        for index, operation in enumerate(operations):
            if not (
                isinstance(operation, dict)
                and isinstance(operation.get("id"), str)
                and isinstance(operation.get("body"), str)
            ):
                raise ManifestError(f"{path}: operations[{index}] needs a string id and body")
            name = operation.get("name")
            documents.append(
                TrustedDocument(
                    operation["id"], operation["body"], name if isinstance(name, str) else None
                )
            )
        return documents
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ManifestError(
            f"{path}: neither an Apollo persisted-query manifest nor a Relay map of id to text"
        )
    return [TrustedDocument(k, v) for k, v in data.items()]


def apollo_manifest(documents: Iterable[TrustedDocument]) -> dict[str, Any]:
    """Apollo's manifest of ``documents`` (what ``switchyard documents`` writes)."""
    operations = []
    for document in documents:
        operations.append(
            {
                "id": document.id,
                "name": document.name,
                "type": operation_type(document.body),
                "body": document.body,
            }
        )
    return {"format": APOLLO_MANIFEST_FORMAT, "version": 1, "operations": operations}


def operation_type(body: str) -> str:
    from graphql import OperationDefinitionNode, parse

    for definition in parse(body).definitions:
        if isinstance(definition, OperationDefinitionNode):
            return definition.operation.value
    return "query"


# The APQ store -----------------------------------------------------------------------------


class ApqStore(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, text: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryApqStore:
    """Registered documents in this process, least recently used first out, bounded by bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.entries = ByteLRU[str, str](max_bytes)

    async def get(self, key: str) -> str | None:
        return self.entries.get(key)

    async def put(self, key: str, text: str) -> None:
        self.entries.put(key, text, weight=ENTRY_OVERHEAD_BYTES + len(key) + len(text))

    async def aclose(self) -> None:
        return None


class RedisApqStore:
    """Registered documents in Redis, shared by every replica, with a local copy of the hits.

    A document is immutable under its hash, so the local copy never goes stale.
    A Redis that fails or is slower than ``timeout`` is a miss (the client registers
    again) and a lost registration; warned about at most every 10 s.
    """

    def __init__(self, client: Redis, settings: ApqSettings) -> None:
        self.client = client
        self.local = MemoryApqStore(settings.max_bytes)
        self.prefix = settings.key_prefix
        self.ttl = settings.ttl
        self.timeout = settings.redis_timeout
        self._warned = 0.0

    @classmethod
    def from_settings(cls, settings: ApqSettings) -> RedisApqStore:
        client = fail_fast_redis(
            settings.redis_url,
            timeout=settings.redis_timeout,
            max_connections=REDIS_MAX_CONNECTIONS,
            client_name=REDIS_CLIENT_NAME,
        )
        return cls(client, settings)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    async def get(self, key: str) -> str | None:
        text = await self.local.get(key)
        if text is not None:
            return text
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self.client.get(self._key(key))
        except (RedisError, OSError, TimeoutError) as exc:
            self._warn(exc)
            return None
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        await self.local.put(key, text)
        return text

    async def put(self, key: str, text: str) -> None:
        await self.local.put(key, text)
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.set(self._key(key), text, ex=self.ttl or None)
        except (RedisError, OSError, TimeoutError) as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned >= WARNING_INTERVAL:
            self._warned = now
            logger.warning("APQ store: Redis failed (%s); a miss", type(exc).__name__)

    async def aclose(self) -> None:
        await self.client.aclose()


def apq_store(settings: ApqSettings) -> ApqStore | None:
    if not settings.enabled:
        return None
    if settings.backend == "redis":
        return RedisApqStore.from_settings(settings)
    return MemoryApqStore(settings.max_bytes)


# The stage ---------------------------------------------------------------------------------


class PersistedDocuments:
    """``persisted``: the document a request names, from the manifests or the APQ store.

    ``resolve`` turns a request's data into one that carries its document's text,
    or raises the refusal; a request that names nothing passes unchanged (with
    ``only``, if its text is listed).
    """

    def __init__(
        self, documents: Iterable[TrustedDocument], apq: ApqStore | None, *, only: bool
    ) -> None:
        self.trusted: dict[str, TrustedDocument] = {}
        for document in documents:
            self.trusted[document_key(document.id)] = document
            self.trusted.setdefault(sha256_hex(document.body), document)
        self.listed_texts = frozenset(d.body for d in self.trusted.values())
        self.apq = apq
        self.only = only

    @classmethod
    def from_settings(
        cls,
        settings: PersistedDocumentSettings,
        apq: ApqSettings,
        base_dir: Path | None = None,
    ) -> PersistedDocuments | None:
        """The stage, or None when there is neither a manifest nor APQ (nothing to do)."""
        documents: list[TrustedDocument] = []
        for path in settings.manifests:
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            documents.extend(read_manifest(path))
        if not documents and not apq.enabled and not settings.only:
            return None
        return cls(documents, apq_store(apq), only=settings.only)

    async def resolve(self, data: GraphQLRequestData) -> GraphQLRequestData:
        extensions = data.extensions
        named: Any = None
        if extensions:
            persisted = extensions.get("persistedQuery")
            if isinstance(persisted, Mapping):
                named = persisted.get("sha256Hash")
                if not isinstance(named, str) or persisted.get("version", 1) != 1:
                    raise refusal(BadRequest("persistedQuery needs version 1 and a sha256Hash."))
                named = named.lower()
            elif persisted is not None:
                raise refusal(BadRequest("extensions.persistedQuery must be an object."))
            document_id = extensions.get(DOCUMENT_ID)
            if document_id is not None:
                if not isinstance(document_id, str):
                    raise refusal(BadRequest("documentId must be a string."))
                named = document_key(document_id)
        query = data.query
        if named is None:
            if self.only and query is not None and query not in self.listed_texts:
                raise refusal(PersistedQueryNotAllowed())
            return data
        if query is not None:
            return await self._register(data, named, query)
        trusted = self.trusted.get(named)
        if trusted is not None:
            return replace(data, query=trusted.body)
        if self.apq is None or self.only:
            if self.trusted or self.only:
                raise refusal(PersistedQueryNotFound())
            raise refusal(PersistedQueryNotSupported())
        text = await self.apq.get(named)
        if text is None:
            raise refusal(PersistedQueryNotFound())
        return replace(data, query=text)

    async def _register(
        self, data: GraphQLRequestData, named: str, query: str
    ) -> GraphQLRequestData:
        trusted = self.trusted.get(named)
        if trusted is not None and trusted.body == query:
            return data
        if sha256_hex(query) != named:
            raise refusal(BadRequest("The document's SHA-256 is not the hash it was sent with."))
        if self.only and query not in self.listed_texts:
            raise refusal(PersistedQueryNotAllowed())
        if self.apq is not None:
            await self.apq.put(named, query)
        return data

    def prepare(self, gateway: Gateway) -> list[str]:
        """Parse, check, validate and estimate every listed document once, pinning it in the
        document cache; the problems found, one line per document (not refused: a document
        that fails answers its errors when asked)."""
        from graphql import GraphQLError, OperationDefinitionNode, specified_rules

        from switchyard.cost import CostError
        from switchyard.limits import OperationLimits

        config = gateway.config
        shape = OperationLimits.from_settings(config.limits)
        schema = gateway.schema._schema
        problems: list[str] = []
        seen: set[str] = set()
        for document in self.trusted.values():
            if document.body in seen:
                continue
            seen.add(document.body)
            label = document.name or document.id
            try:
                parsed = gateway.documents.pin(document.body)
            except GraphQLError as exc:
                problems.append(f"{label}: {exc.message}")
                continue
            errors = gateway.documents.validate(
                schema,
                document.body,
                parsed,
                tuple(specified_rules),
                shape,
                hide_suggestions=config.server.production,
            )
            if errors:
                problems.append(f"{label}: {errors[0].message}")
                continue
            if config.cost.mode != "off":
                # Keyed as clients send it: the operation's name, no variables.
                named = [
                    d.name.value
                    for d in parsed.definitions
                    if isinstance(d, OperationDefinitionNode) and d.name is not None
                ]
                operation_name = named[0] if len(named) == 1 else None
                try:
                    gateway.estimate_cache.estimate(
                        gateway.cost_model, schema, parsed, None, operation_name, strict=True
                    )
                except (CostError, GraphQLError) as exc:
                    problems.append(f"{label}: {exc}")
        return problems

    def prepare_logged(self, gateway: Gateway) -> None:
        """``prepare``, each problem logged as one warning line."""
        problems = self.prepare(gateway)
        for problem in problems:
            logger.warning("trusted document refused when asked: %s", problem)
        logger.info("trusted documents prepared: %d", len({d.body for d in self.trusted.values()}))

    async def aclose(self) -> None:
        if self.apq is not None:
            await self.apq.aclose()


DOCUMENT_ID = "documentId"
"""A request's top-level ``documentId``, carried into its extensions by ``fold_document_id``."""


def fold_document_id(data: dict[str, Any]) -> None:
    """Move a request's top-level ``documentId`` into its extensions, which the view passes on.

    >>> data = {"documentId": "sha256:ab"}
    >>> fold_document_id(data); data
    {'extensions': {'documentId': 'sha256:ab'}}
    """
    if DOCUMENT_ID not in data:
        return
    document_id = data.pop(DOCUMENT_ID)
    extensions = data.get("extensions")
    if extensions is None:
        data["extensions"] = {DOCUMENT_ID: document_id}
    elif isinstance(extensions, dict):
        extensions.setdefault(DOCUMENT_ID, document_id)


# ``switchyard documents`` ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuiltDocument:
    document: TrustedDocument
    cost: int | None
    source: Path


def build_documents(
    files: Iterable[Path], schema: Any, *, cost_model: Any = None
) -> list[BuiltDocument]:
    """One trusted document per operation of ``files``: the operation and the fragments it
    spreads (from any of the files), printed by graphql-core, its id the SHA-256 of that
    text; each validated against ``schema`` and estimated with ``cost_model`` (variables'
    defaults). Raises ``ManifestError`` naming the file and operation that fails."""
    from graphql import (
        FragmentDefinitionNode,
        FragmentSpreadNode,
        GraphQLError,
        OperationDefinitionNode,
        parse,
        print_ast,
        validate,
        visit,
    )
    from graphql.language import DocumentNode, Visitor

    from switchyard.cost import CostError, estimate_cost

    sources: list[tuple[Path, DocumentNode]] = []
    fragments: dict[str, FragmentDefinitionNode] = {}
    for path in files:
        try:
            parsed = parse(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ManifestError(f"{path}: cannot read ({exc.strerror})") from None
        except GraphQLError as exc:
            raise ManifestError(f"{path}: {exc.message}") from None
        sources.append((path, parsed))
        for definition in parsed.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                fragments[definition.name.value] = definition

    class Spreads(Visitor):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
            self.names.append(node.name.value)

    def needed(node: Any) -> list[FragmentDefinitionNode]:
        found: dict[str, FragmentDefinitionNode] = {}
        pending = [node]
        while pending:
            spreads = Spreads()
            visit(pending.pop(), spreads)
            for name in spreads.names:
                if name not in found:
                    if name not in fragments:
                        raise ManifestError(f"unknown fragment {name}")
                    found[name] = fragments[name]
                    pending.append(fragments[name])
        return [found[name] for name in sorted(found)]

    built: list[BuiltDocument] = []
    for path, parsed in sources:
        for definition in parsed.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            name = definition.name.value if definition.name else None
            label = f"{path}: {name or 'anonymous operation'}"
            try:
                document = DocumentNode(definitions=(definition, *needed(definition)))
            except ManifestError as exc:
                raise ManifestError(f"{label}: {exc}") from None
            body = print_ast(document)
            document = parse(body)
            errors = validate(schema, document)
            if errors:
                raise ManifestError(f"{label}: {errors[0].message}")
            cost: int | None = None
            if cost_model is not None:
                try:
                    cost = estimate_cost(cost_model, schema, document, None, name).cost
                except (CostError, GraphQLError) as exc:
                    raise ManifestError(f"{label}: {exc}") from None
            built.append(BuiltDocument(TrustedDocument(sha256_hex(body), body, name), cost, path))
    return built

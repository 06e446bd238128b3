"""Cacheable GET: ``@cacheControl`` hints in the schema, the response's ``Cache-Control``, ETags.

A graph marks what may be cached, in the spirit of Apollo's directive::

    @strawberry.type(directives=[cache_control(max_age=60)])
    class Product: ...

    email: str | None = strawberry.field(directives=[cache_control(scope=PRIVATE)])

prints ``type Product @cacheControl(maxAge: 60)``. The policy of an operation
is found once per document (``CachePolicies``), Apollo's way: a field's own
hint, else its type's (objects, interfaces, unions); root fields and fields
of a composite type without either get max-age 0 (not cacheable), unless
``inherit_max_age`` lets them take their parent's; scalar fields take their
parent's. The operation's max-age is the smallest of the fields it touches, and
it is ``private`` if any of them is.

A ``GET`` answer (``HttpCache.finish``) then gets ``Cache-Control: public,
max-age=N`` only when every field is public and N > 0, ``private, max-age=N``
when one is per user, ``no-store`` otherwise, with errors, or for mutations;
the upstreams' own ``Cache-Control`` (``[response_headers] cache_control =
"most_restrictive"``) is combined, the most restrictive wins. It gets a strong
``ETag`` (a digest of the body) and ``Vary`` naming the headers that select
the caller; an ``If-None-Match`` that matches answers 304 with an empty body.
"""

from __future__ import annotations

import base64
import hashlib
import weakref
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_composite_type,
    parse,
)
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLRequestData
from strawberry.schema_directive import Location
from strawberry.types import ExecutionResult

from switchyard.documents import DocumentCache
from switchyard.lru import ByteLRU
from switchyard.upstream.headers import CacheControl, combine_cache_control

if TYPE_CHECKING:
    from switchyard.app import Gateway
    from switchyard.context import RequestContext

NOT_CACHEABLE = "no-store"
REQUEST_DATA_STATE = "graphql_request_data"
"""Where the view leaves a GET's request data (its document's text) for ``respond``."""
POLICY_CACHE_BYTES = 4 * 1024 * 1024
POLICY_ENTRY_BYTES = 512


@strawberry.enum(name="CacheControlScope")
class CacheControlScope(Enum):
    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"


PUBLIC = CacheControlScope.PUBLIC
PRIVATE = CacheControlScope.PRIVATE


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION, Location.OBJECT, Location.INTERFACE, Location.UNION],
    name="cacheControl",
    description="How long a GET answer touching this field or type may be cached, and by whom "
    "(PRIVATE: per user). Without a hint, root fields and object fields are not cacheable.",
)
class CacheControlHint:
    max_age: int | None = strawberry.UNSET
    scope: CacheControlScope | None = strawberry.UNSET
    inherit_max_age: bool | None = strawberry.UNSET


def cache_control(
    *,
    max_age: int | None = strawberry.UNSET,
    scope: CacheControlScope | None = strawberry.UNSET,
    inherit_max_age: bool | None = strawberry.UNSET,
) -> CacheControlHint:
    """``@cacheControl`` with only the arguments given.

    >>> cache_control(max_age=60).max_age
    60
    """
    return CacheControlHint(max_age=max_age, scope=scope, inherit_max_age=inherit_max_age)


@dataclass(frozen=True, slots=True)
class Hint:
    max_age: int | None = None
    private: bool = False
    inherit: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """An operation's cache policy: max-age 0 is not cacheable."""

    max_age: int
    private: bool

    @property
    def control(self) -> CacheControl | None:
        """As one call's ``Cache-Control`` for ``combine_cache_control`` (None: no-store)."""
        if self.max_age <= 0:
            return None
        return CacheControl(max_age=self.max_age, private=self.private, public=not self.private)


UNCACHEABLE = Policy(0, False)


class CacheHints:
    """The ``@cacheControl`` hints of a schema, read from its printed SDL (what clients see)."""

    def __init__(self, types: dict[str, Hint], fields: dict[tuple[str, str], Hint]) -> None:
        self.types = types
        self.fields = fields

    @classmethod
    def from_sdl(cls, sdl: str) -> CacheHints:
        types: dict[str, Hint] = {}
        fields: dict[tuple[str, str], Hint] = {}
        for definition in parse(sdl).definitions:
            name = getattr(definition, "name", None)
            if name is None:
                continue
            hint = _hint(getattr(definition, "directives", None) or ())
            if hint is not None:
                types[name.value] = hint
            for field in getattr(definition, "fields", None) or ():
                field_hint = _hint(field.directives or ())
                if field_hint is not None:
                    fields[(name.value, field.name.value)] = field_hint
        return cls(types, fields)

    def __bool__(self) -> bool:
        return bool(self.types or self.fields)


def _hint(directives: Any) -> Hint | None:
    for directive in directives:
        if directive.name.value != "cacheControl":
            continue
        arguments = {a.name.value: getattr(a.value, "value", None) for a in directive.arguments}
        max_age = arguments.get("maxAge")
        return Hint(
            max_age=int(max_age) if max_age is not None else None,
            private=arguments.get("scope") == "PRIVATE",
            inherit=arguments.get("inheritMaxAge") in (True, "true"),
        )
    return None


def policy_of(
    hints: CacheHints, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> Policy:
    """The policy of ``document``'s operation: every field it may touch (``@skip`` and
    ``@include`` ignored: the answer may touch them)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        return UNCACHEABLE
    root = schema.query_type
    if root is None:
        return UNCACHEABLE
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _PolicyWalk(hints, schema, fragments)
    walk.selections(root.name, operations[0].selection_set, None, root=True, seen=frozenset())
    if walk.max_age is None or walk.max_age <= 0:
        return Policy(0, walk.private)
    return Policy(walk.max_age, walk.private)


class _PolicyWalk:
    def __init__(
        self,
        hints: CacheHints,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
    ) -> None:
        self.hints = hints
        self.schema = schema
        self.fragments = fragments
        self.max_age: int | None = None
        self.private = False

    def _limit(self, max_age: int) -> None:
        self.max_age = max_age if self.max_age is None else min(self.max_age, max_age)

    def selections(
        self,
        type_name: str,
        selection_set: SelectionSetNode,
        parent_age: int | None,
        *,
        root: bool,
        seen: frozenset[str],
    ) -> None:
        parent = self.schema.get_type(type_name)
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.field(type_name, parent, selection, parent_age, root=root, seen=seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                name = condition.name.value if condition else type_name
                self.selections(name, selection.selection_set, parent_age, root=root, seen=seen)
            elif isinstance(selection, FragmentSpreadNode):
                spread = selection.name.value
                fragment = self.fragments.get(spread)
                if fragment is not None and spread not in seen:
                    self.selections(
                        fragment.type_condition.name.value,
                        fragment.selection_set,
                        parent_age,
                        root=root,
                        seen=seen | {spread},
                    )

    def field(
        self,
        type_name: str,
        parent: Any,
        node: FieldNode,
        parent_age: int | None,
        *,
        root: bool,
        seen: frozenset[str],
    ) -> None:
        name = node.name.value
        if name == "__typename":
            return
        definition = getattr(parent, "fields", {}).get(name) if parent is not None else None
        if definition is None:  # introspection, or an abstract type's member field
            if name.startswith("__"):
                self._limit(0)
            return
        named = get_named_type(definition.type)
        composite = is_composite_type(named)
        hint = self.hints.fields.get((type_name, name))
        type_hint = self.hints.types.get(named.name) if composite else None
        max_age: int | None = None
        for candidate in (hint, type_hint):
            if candidate is None:
                continue
            if candidate.private:
                self.private = True
            if max_age is None and candidate.max_age is not None:
                max_age = candidate.max_age
            if max_age is None and candidate.inherit and not root:
                max_age = parent_age
        if max_age is None:
            max_age = 0 if (root or composite) else parent_age
        if max_age is not None:
            self._limit(max_age)
        if node.selection_set is not None and composite:
            self.selections(named.name, node.selection_set, max_age, root=False, seen=seen)


class CachePolicies:
    """Policies of recent operations by document and operation name (documents held weakly)."""

    def __init__(self, hints: CacheHints, schema: GraphQLSchema) -> None:
        self.hints = hints
        self.schema = schema
        self._entries = ByteLRU[tuple[int, str | None], tuple[weakref.ref[DocumentNode], Policy]](
            POLICY_CACHE_BYTES
        )

    def policy(self, document: DocumentNode, operation_name: str | None) -> Policy:
        if not self.hints:
            return UNCACHEABLE
        key = (id(document), operation_name)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is document:
            return entry[1]
        policy = policy_of(self.hints, self.schema, document, operation_name)
        self._entries.put(key, (weakref.ref(document), policy), weight=POLICY_ENTRY_BYTES)
        return policy


# HTTP --------------------------------------------------------------------------------------


class HttpCacheSettings(BaseModel):
    """``[http_cache]``: Cache-Control, ETag and 304 for GraphQL queries over GET."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    vary: list[str] = Field(
        default_factory=list,
        description="headers that select the caller, beside Authorization and the API-key header",
    )


def etag_of(body: bytes) -> str:
    """A strong ETag: a digest of the encoded body.

    >>> etag_of(b'{"data":{}}')
    '"Tl0YYaxvduv6hgCFJ6GIuw"'
    """
    digest = hashlib.blake2b(body, digest_size=16).digest()
    return '"' + base64.urlsafe_b64encode(digest).decode().rstrip("=") + '"'


def matching(if_none_match: str, etag: str) -> str | None:
    """The tag of an ``If-None-Match`` that names ``etag`` (weak comparison, as RFC 9110
    asks: a compressed answer's ETag is the weak form of its body's), else None.

    >>> matching('W/"a", "b"', '"a"')
    'W/"a"'
    """
    opaque = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return etag if tag == "*" else tag
    return None


class HttpCache:
    """The ``respond`` stage's part for GET: the policy's headers, the ETag, 304."""

    def __init__(
        self,
        settings: HttpCacheSettings,
        policies: CachePolicies,
        documents: DocumentCache,
        vary: list[str],
    ) -> None:
        self.settings = settings
        self.policies = policies
        self.documents = documents
        self.vary = ", ".join(dict.fromkeys([*vary, *settings.vary]))

    @classmethod
    def for_gateway(cls, gateway: Gateway) -> HttpCache:
        config = gateway.config
        hints = CacheHints.from_sdl(gateway.schema.as_str())
        policies = CachePolicies(hints, gateway.schema._schema)
        vary = ["Authorization", config.auth.api_key_header]
        return cls(config.http_cache, policies, gateway.documents, vary)

    def respond(self, context: RequestContext, request: Request, result: ExecutionResult) -> None:
        """A GET answer's ``Cache-Control``, from its document's policy, the upstreams' header
        (``[response_headers]``) and whether it failed."""
        data: GraphQLRequestData | None = getattr(request.state, REQUEST_DATA_STATE, None)
        policy = UNCACHEABLE
        if data is not None and data.query is not None:
            document = self.documents.cached(data.query)
            if document is not None:
                policy = self.policies.policy(document, data.operation_name)
        headers = context.response.headers
        per_caller = context.budget is not None or context.debug is not None
        headers["cache-control"] = self.cache_control(
            policy, headers.get("cache-control"), failed=bool(result.errors), per_caller=per_caller
        )

    def cache_control(
        self, policy: Policy, upstream: str | None, *, failed: bool, per_caller: bool
    ) -> str:
        """The response's ``Cache-Control``: the schema's policy and the upstreams' header
        (None: the rule is off), the most restrictive; ``per_caller``: the body holds the
        caller's own state (its budget), so it is private at best."""
        control = policy.control
        if control is not None and per_caller and not control.private:
            control = CacheControl(max_age=control.max_age, private=True)
        controls: list[tuple[CacheControl | None, int]] = [(control, 0)]
        if upstream is not None:
            controls.append((CacheControl.parse(upstream), 0))
        combined = combine_cache_control(controls, failed=failed)
        shared = control is not None and not control.private
        if shared and "private" not in combined and combined != NOT_CACHEABLE:
            return "public, " + combined if "no-cache" not in combined else combined
        return combined

    def finish(self, request: Request, response: Response) -> Response:
        """A GET answer with its ETag and Vary; 304 with an empty body when the client has it."""
        headers = response.headers
        if self.vary:
            headers.add_vary_header(self.vary)
        if response.status_code != 200:
            headers.setdefault("cache-control", NOT_CACHEABLE)
            return response
        body = getattr(response, "body", None)  # a streamed answer has none
        if headers.get("cache-control") == NOT_CACHEABLE or not isinstance(body, bytes):
            return response
        etag = etag_of(body)
        headers["etag"] = etag
        if_none_match = request.headers.get("if-none-match")
        matched = matching(if_none_match, etag) if if_none_match is not None else None
        if matched is None:
            return response
        # The validator the client holds (the compressed answer's weak form, if it was).
        kept = {
            name: value
            for name, value in headers.items()
            if name not in ("content-length", "content-type")
        }
        kept["etag"] = matched
        return Response(status_code=304, headers=kept)

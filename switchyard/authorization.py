"""Field-level authorization: directives shown in the SDL, and the checks that enforce them.

    @strawberry.field(extensions=[requires_scopes([["orders:read"]])])
    async def orders(...) -> Connection[Order] | None: ...

gives ``orders: OrderConnection @requiresScopes(scopes: [["orders:read"]])``.
Scopes are ORed across the outer list and ANDed within an inner one, as in
Apollo's ``@requiresScopes``. ``@authenticated`` wants any identity;
``@ownerOrAdmin`` lets a user read their own fields and an admin anyone's.

A refused field is nulled with an error at its path: ``UNAUTHENTICATED`` for an
anonymous caller, ``FORBIDDEN`` otherwise. So a protected field must be
nullable (a non-null one would null its parent too): building a schema with a
non-null protected field fails. Only protected fields carry an extension, so
public leaf fields keep costing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.schema_directive import Location
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField

from switchyard.caller import Caller
from switchyard.errors import Forbidden, GraphError, Unauthenticated

SIGN_IN = "Sign in to see this field."


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="authenticated",
    description="Only callers with an identity (a token or an API key) may read this field.",
)
class AuthenticatedDirective:
    pass


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresScopes",
    description="The caller needs every scope of at least one inner list.",
)
class RequiresScopesDirective:
    scopes: list[list[str]]


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="ownerOrAdmin",
    description="Only the user this object is, or a caller with the admin scope, may read this.",
)
class OwnerOrAdminDirective:
    pass


Rule = Callable[[Caller, Any], GraphError | None]
"""A check: the caller and the field's parent object in, the refusal (or None) out."""


def must_be_authenticated(caller: Caller, source: Any) -> GraphError | None:
    return None if caller.authenticated else Unauthenticated(SIGN_IN)


def scopes_rule(any_of: Sequence[Sequence[str]]) -> Rule:
    """Allowed when the caller holds every scope of at least one of ``any_of``."""
    alternatives = [frozenset(scopes) for scopes in any_of]
    needed = " or ".join(" and ".join(sorted(scopes)) for scopes in alternatives)
    message = f"This field needs scope {needed}."

    def rule(caller: Caller, source: Any) -> GraphError | None:
        if any(scopes <= caller.scopes for scopes in alternatives):
            return None
        return Forbidden(message) if caller.authenticated else Unauthenticated(SIGN_IN)

    return rule


def owner_rule(owner_of: Callable[[Any], str]) -> Rule:
    """Allowed for the user whose id ``owner_of(source)`` is, and for admins."""

    def rule(caller: Caller, source: Any) -> GraphError | None:
        if caller.admin or (caller.subject is not None and caller.subject == owner_of(source)):
            return None
        if not caller.authenticated:
            return Unauthenticated(SIGN_IN)
        return Forbidden("Only this user or an admin may see this field.")

    return rule


class Authorize(FieldExtension):
    """Runs ``rule`` before the field resolves; shows ``directive`` on the field in the SDL."""

    def __init__(self, rule: Rule, directive: object) -> None:
        self.rule = rule
        self.directive = directive

    def apply(self, field: StrawberryField) -> None:
        # apply() runs each time a schema is built from these types: add the directive once.
        if self.directive not in field.directives:
            field.directives.append(self.directive)
        if not isinstance(field.type, StrawberryOptional):
            raise TypeError(f"{field.python_name} is protected, so it must be nullable")

    def resolve(
        self, next_: Callable[..., Any], source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        refusal = self.rule(info.context.caller, source)
        if refusal is not None:
            raise refusal
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: Callable[..., Any], source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        refusal = self.rule(info.context.caller, source)
        if refusal is not None:
            raise refusal
        return await next_(source, info, **kwargs)


def authenticated() -> Authorize:
    """``@authenticated``: any identity will do; anonymous callers get ``UNAUTHENTICATED``."""
    return Authorize(must_be_authenticated, AuthenticatedDirective())


def requires_scopes(any_of: Sequence[Sequence[str]]) -> Authorize:
    """``@requiresScopes(scopes: any_of)``."""
    scopes = [list(alternative) for alternative in any_of]
    return Authorize(scopes_rule(scopes), RequiresScopesDirective(scopes=scopes))


def owner_or_admin(owner_of: Callable[[Any], str]) -> Authorize:
    """``@ownerOrAdmin``: ``owner_of(parent)`` is the user id that may read the field."""
    return Authorize(owner_rule(owner_of), OwnerOrAdminDirective())

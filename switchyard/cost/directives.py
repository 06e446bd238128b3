"""The ``@cost`` and ``@listSize`` directives as the specification defines them."""

from __future__ import annotations

from graphql import DirectiveDefinitionNode, DocumentNode, GraphQLSchema, build_ast_schema, parse

COST_DIRECTIVES_SDL = """
directive @cost(weight: String!)
  on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION | INPUT_FIELD_DEFINITION | OBJECT | SCALAR
directive @listSize(
  assumedSize: Int
  slicingArguments: [String!]
  sizedFields: [String!]
  requireOneSlicingArgument: Boolean = true
) on FIELD_DEFINITION
"""
"""The specification's definitions of the two directives."""


def build_cost_schema(sdl: str) -> GraphQLSchema:
    """``graphql.build_schema``, defining ``@cost`` and ``@listSize`` if ``sdl`` does not.

    >>> schema = build_cost_schema('type Query { a: [Int] @listSize(assumedSize: 3) }')
    >>> schema.get_directive("listSize").args["assumedSize"].type
    <GraphQLScalarType 'Int'>
    """
    document = parse(sdl)
    defined = {d.name.value for d in document.definitions if isinstance(d, DirectiveDefinitionNode)}
    if not {"cost", "listSize"} <= defined:
        missing = parse(COST_DIRECTIVES_SDL).definitions
        added = tuple(d for d in missing if d.name.value not in defined)  # type: ignore[attr-defined]
        document = DocumentNode(definitions=(*document.definitions, *added))
    return build_ast_schema(document)

"""The differential test of the planned execution path (tests/test_execution_differential.py).

``generator`` writes seeded random operations over any GraphQL schema; ``abstract_graph``
is a small in-memory graph with interfaces, unions, edges, field rules and injected
errors; ``compare`` runs one operation through both paths and describes any difference.
"""

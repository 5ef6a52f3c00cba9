"""Hypothesis strategies for DDCL-INCRT inputs, importable by other projects' test suites.

Requires ``hypothesis`` (the ``dev`` extra). Every strategy respects the caps in ``_caps`` and is
itself tested (tests/test_strategies*.py) to produce only valid inputs.
"""

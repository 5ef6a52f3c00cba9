"""The papers' empirical claims, each tested by a study whose protocol is fixed in ``docs/studies/``
before any result is seen. Every result is ``measured``; every seed is reported.

One module per study; this package re-exports nothing (import the study's module).
"""

__all__: list[str] = []

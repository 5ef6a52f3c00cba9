"""Falsifiers: for each hypothesis of a ``proved`` claim, a concrete input violating it on which the
claim's conclusion fails (constructed, then checked numerically with the reference)."""

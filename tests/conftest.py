"""Test-suite configuration: hypothesis profiles chosen by ``DDCL_HYPOTHESIS_PROFILE``.

* ``dev`` (default): a moderate number of random examples, with the example database.
* ``ci``: derandomized, no database (what ``.ci/run`` selects), so CI is reproducible.
* ``thorough``: many more examples, for runs on purpose.

jaxtyping's shape/dtype checks on ``reference`` are switched on by pytest's ``--jaxtyping-packages``
option in ``pyproject.toml``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("DDCL_HYPOTHESIS_PROFILE", "dev"))

"""``python -m ddcl_incrt.bench``: :func:`ddcl_incrt.bench.command.main`."""

from __future__ import annotations

import sys

from ddcl_incrt.bench.command import main

if __name__ == "__main__":
    sys.exit(main())

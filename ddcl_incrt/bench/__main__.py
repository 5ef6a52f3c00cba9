"""``python -m ddcl_incrt.bench``: :func:`ddcl_incrt.bench.command.main`, which runs what ``ddcl-incrt bench``
runs through the same runner (:func:`ddcl_incrt.exit_codes.run_command`): the same exit codes, one line on
Ctrl-C or SIGTERM. (Not ``ddcl_incrt.cli.main(["bench", ...])``: the bench never imports the CLI.)"""

from __future__ import annotations

import sys

from ddcl_incrt.bench.command import main

if __name__ == "__main__":
    sys.exit(main())

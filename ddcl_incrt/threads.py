"""How many threads a command computes with: torch's intra-op pool and the BLAS / OpenMP pools NumPy
uses, set together, by one policy (README, "Threads").

Why a policy: on a small machine shared with other work, torch's default (one intra-op thread per core)
and a multi-threaded BLAS oversubscribe the cores, and the layer's small matrices gain nothing from
more threads, so a loaded 2-core machine ran the audit several times slower with the defaults than
with one thread (measured table in docs/performance.md, "Threads"). The default is therefore one
thread; ``--threads N`` on every command chooses another count.
"""

from __future__ import annotations

import os
import sys

from threadpoolctl import threadpool_limits

DEFAULT_THREADS = 1


def use_threads(n: int | None) -> int:
    """Compute with ``n`` threads for the rest of the process; returns the count set.

    ``None`` keeps a count the user set in ``OMP_NUM_THREADS`` and is :data:`DEFAULT_THREADS` otherwise;
    a value there that is not a positive integer is refused, naming it (it is not replaced silently: the
    user asked for something the policy cannot give). The count goes to ``OMP_NUM_THREADS`` (torch and
    OpenMP read it when they start: torch is imported only by the commands that need it), to the BLAS /
    OpenMP pools already loaded (NumPy's, through threadpoolctl) and to torch's intra-op pool if torch is
    already imported."""
    if n is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if env and not (env.isascii() and env.isdigit() and int(env) > 0):
            raise ValueError(
                f"OMP_NUM_THREADS: expected a positive integer thread count (one level: a nested list such as "
                f"4,2 is not supported), got {env!r}; unset it, or pass --threads N, which takes precedence"
            )
        count = int(env) if env else DEFAULT_THREADS
    else:
        count = n
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"--threads: expected a positive integer, got {n!r}")
    os.environ["OMP_NUM_THREADS"] = str(count)
    threadpool_limits(limits=count)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
    return count


__all__ = ["DEFAULT_THREADS", "use_threads"]

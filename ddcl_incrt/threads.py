"""How many threads a command computes with: torch's intra-op pool and the BLAS / OpenMP pools NumPy
uses, set together, by one policy (README, "Threads").

Why a policy: on a small machine shared with other work, torch's default (one intra-op thread per core)
and a multi-threaded BLAS oversubscribe the cores, and the layer's small matrices gain nothing from
more threads, so a loaded 2-core machine ran the audit several times slower with the defaults than
with one thread (measured table in docs/performance.md, "Threads"). The default is therefore one
thread; ``--threads N`` on every command chooses another count, up to :data:`MAX_THREADS`.
"""

from __future__ import annotations

import os
import sys

from threadpoolctl import threadpool_limits

DEFAULT_THREADS = 1

# The most threads a command accepts, from --threads or OMP_NUM_THREADS; more is refused, naming the
# option. A fixed cap rather than a multiple of os.cpu_count(): a command line accepted on one machine
# is accepted on every other (a script, a CI job, the tests), and os.cpu_count() is not the number of
# CPUs this process may use anyway (affinity masks, cgroup quotas). 1024 is above the hardware threads
# of any one machine these commands run on (the largest two-socket servers have 768), so no real count
# is refused, and far below where a count breaks things: torch.set_num_threads and the BLAS libraries
# take a C int (a 20-digit count was an OverflowError traceback), and every thread is an OS thread with
# its own stack (a count of 100000 asks the OS for 100000 threads). Beyond the cores, more threads only
# oversubscribe them (docs/performance.md, "Threads").
MAX_THREADS = 1024


def _too_many(source: str, digits: str, hint: str = "") -> ValueError:
    """The error for a count above :data:`MAX_THREADS`, given as ``digits``, shortened when long."""
    shown = digits if len(digits) <= 40 else f"{digits[:20]}... ({len(digits)} digits)"
    return ValueError(
        f"{source}: expected at most {MAX_THREADS} threads (the cap of every command; more than the cores "
        f"only oversubscribes them), got {shown}{hint}"
    )


def use_threads(n: int | None) -> int:
    """Compute with ``n`` threads for the rest of the process; returns the count set.

    ``None`` keeps a count the user set in ``OMP_NUM_THREADS`` and is :data:`DEFAULT_THREADS` otherwise;
    a value there that is not a positive integer, or is above :data:`MAX_THREADS`, is refused, naming it
    (it is not replaced silently: the user asked for something the policy cannot give); so is such an
    ``n``, naming ``--threads``. The count goes to ``OMP_NUM_THREADS`` (torch and
    OpenMP read it when they start: torch is imported only by the commands that need it), to the BLAS /
    OpenMP pools already loaded (NumPy's, through threadpoolctl) and to torch's intra-op pool if torch is
    already imported."""
    if n is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if env and not (env.isascii() and env.isdigit() and env.strip("0")):  # strip: not 0, 00, ...
            raise ValueError(
                f"OMP_NUM_THREADS: expected a positive integer thread count (one level: a nested list such as "
                f"4,2 is not supported), got {env!r}; unset it, or pass --threads N, which takes precedence"
            )
        # compared as text first: int() refuses a string of more than 4300 digits (a ValueError naming nothing)
        if env and (len(env.lstrip("0")) > len(str(MAX_THREADS)) or int(env) > MAX_THREADS):
            raise _too_many("OMP_NUM_THREADS", env, "; unset it, or pass --threads N, which takes precedence")
        count = int(env) if env else DEFAULT_THREADS
    else:
        count = n
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"--threads: expected a positive integer, got {n!r}")
    if count > MAX_THREADS:
        # str() refuses an int of more than 4300 digits (a caller's, not argparse's: it cannot make one)
        raise _too_many("--threads", str(count) if count.bit_length() <= 10_000 else f"a {count.bit_length()}-bit int")
    os.environ["OMP_NUM_THREADS"] = str(count)
    threadpool_limits(limits=count)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
    return count


__all__ = ["DEFAULT_THREADS", "MAX_THREADS", "use_threads"]

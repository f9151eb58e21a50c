"""How much memory this process may still take: what the commands check their work against
before they start it (a read, a build, a prediction that cannot fit is refused at once)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def available_memory() -> int | None:
    """Bytes this process may still allocate: what the system has available, within its
    cgroup's limit and its own address-space limit. None where that is not known."""
    found = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append(int(limit) - used)
    with contextlib.suppress(OSError, ValueError, IndexError, ImportError):
        import resource  # POSIX

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            found.append(soft - used)
    return min(found) if found else None

"""How many CPUs this process may really use: the thread count every default is taken from.

``os.cpu_count()`` counts the machine's CPUs, not the ones a process may run on. In a container
(``docker --cpus 1``, a Kubernetes CPU limit), under ``taskset`` or in a batch job the process gets
fewer, and a thread pool sized from the machine then has its threads wait for each other and
for the neighbours (a per-face cost several times higher was measured that way: issue 15).
:func:`available_cpus` is the smallest of:

- the CPUs in the process's affinity mask (``os.sched_getaffinity``, ``taskset``, cpusets);
- the cgroup CPU quota, rounded up: cgroup v2 ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD") of
  the process's own cgroup, or cgroup v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``;
- ``os.cpu_count()``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _own_cgroup_v2(root: Path) -> Path:
    """The process's cgroup v2 folder (``/proc/self/cgroup``'s "0::/path" line), else the root."""
    text = _read(Path("/proc/self/cgroup")) or ""
    for line in text.splitlines():
        if line.startswith("0::"):
            candidate = root / line[3:].lstrip("/")
            if candidate.is_dir():
                return candidate
    return root


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The cgroup CPU quota in CPUs (e.g. 1.5), or None when there is none or it cannot be read.

    cgroup v2: the ``cpu.max`` of the process's cgroup and of each parent up to ``root`` (the
    tightest counts); cgroup v1: ``cpu/cpu.cfs_quota_us`` over ``cpu/cpu.cfs_period_us``.
    """
    limits = []
    if (root / "cgroup.controllers").exists() or (root / "cpu.max").exists():  # v2
        folder = _own_cgroup_v2(root)
        while True:
            text = _read(folder / "cpu.max")
            if text:
                quota, _, period = text.partition(" ")
                if quota != "max" and period:
                    try:
                        limits.append(int(quota) / int(period))
                    except (ValueError, ZeroDivisionError):
                        pass
            if folder == root or root not in folder.parents:
                break
            folder = folder.parent
    else:  # v1
        quota = _read(root / "cpu" / "cpu.cfs_quota_us")
        period = _read(root / "cpu" / "cpu.cfs_period_us")
        try:
            if quota is not None and period is not None and int(quota) > 0 and int(period) > 0:
                limits.append(int(quota) / int(period))
        except ValueError:
            pass
    return min(limits) if limits else None


def available_cpus() -> int:
    """CPUs this process may use (at least 1): the affinity mask, the cgroup quota rounded up and
    ``os.cpu_count()``, whichever is smallest."""
    n = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        try:
            n = min(n, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    quota = cgroup_cpu_limit()
    if quota is not None and quota > 0:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)

"""What other work takes of this machine: its load, and on a virtual machine the CPU time its host gave
to other machines instead (steal), which no load average shows.

On this project's shared 2-core machine, renders of one scene took 0.88 to 1.54 min of job time, in step
with the steal measured while they ran (1 % to 29 %), while `plan` beside them measured 0.14 to 0.21 s a
step throughout (BENCHMARKS.md, "plan's estimate and the host's steal").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STEAL_WARNING = 0.10  # a share of the CPU time worth a warning: renders ran about that much slower
PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class CpuTimes:
    """The machine's CPU time so far, all cores, in clock ticks: in all, and stolen by the host."""

    total: int
    steal: int

    @classmethod
    def now(cls, stat: Path = PROC_STAT) -> CpuTimes | None:
        """From Linux's /proc/stat (its first line: user nice system idle iowait irq softirq steal …);
        None where there is none to read (not Linux, or no steal column)."""
        try:
            with stat.open() as f:
                fields = f.readline().split()
        except OSError:
            return None
        if len(fields) < 9 or fields[0] != "cpu":
            return None
        ticks = [int(x) for x in fields[1:9]]  # guest time (columns 9, 10) is inside user time already
        return cls(sum(ticks), ticks[7])


def stolen(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """The share of the CPU time between two readings that the host gave to other machines."""
    if before is None or after is None or after.total <= before.total:
        return None
    return (after.steal - before.steal) / (after.total - before.total)


def steal_warning(share: float | None, during: str, consequence: str) -> str | None:
    """A warning where the host took at least STEAL_WARNING of the CPU time `during` something."""
    if share is None or share < STEAL_WARNING:
        return None
    return (
        f"warning: this machine's host gave {share:.0%} of its CPU time to other machines {during} "
        f"(steal): {consequence}"
    )


def steal_since(began: CpuTimes | None, during: str, consequence: str) -> str | None:
    """`steal_warning` for the time since the reading `began`."""
    return steal_warning(stolen(began, CpuTimes.now()), during, consequence)


def busy_cores(consequence: str, load: float | None = None, cores: int | None = None) -> str | None:
    """A warning when other work keeps this machine's cores busy (the last minute's load average at
    least its core count), saying its `consequence`: torch's threads then run several times slower,
    with no other sign of why."""
    load = os.getloadavg()[0] if load is None else load
    cores = cores or os.cpu_count() or 1
    if load < cores:
        return None
    return (
        f"warning: this machine's {cores} cores are busy (load {load:.1f}): {consequence}; "
        "see OMP_NUM_THREADS in the README"
    )

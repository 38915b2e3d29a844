"""What other work takes of this machine: its load, and on a virtual machine the CPU time its host gave
to other machines instead (steal), which no load average shows.

On this project's shared 2-core machine, renders of one scene took 0.88 to 1.54 min of job time, in step
with the steal measured while they ran (1 % to 29 %), while `plan` beside them measured 0.14 to 0.21 s a
step throughout (BENCHMARKS.md, "plan's estimate and the host's steal").
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

BUSY_WARNING = 0.9  # cores busy with other work: one kept busy read 0.97-1.03 over `cores_busy_now`
STEAL_WARNING = 0.10  # a share of the CPU time worth a warning: renders ran about that much slower
PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class CpuTimes:
    """The machine's CPU time so far, all cores, in clock ticks: in all, stolen by the host, and idle
    (waiting for disks included)."""

    total: int
    steal: int
    idle: int = 0

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
        return cls(sum(ticks), ticks[7], ticks[3] + ticks[4])


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


def cores_busy(before: CpuTimes | None, after: CpuTimes | None, cores: int) -> float | None:
    """How many of the `cores` were busy between two readings, on average (steal aside)."""
    if before is None or after is None or after.total <= before.total:
        return None
    spent = after.total - before.total
    return cores * (spent - (after.idle - before.idle) - (after.steal - before.steal)) / spent


def cores_busy_now(seconds: float = 0.3) -> float | None:
    """Cores busy over the next `seconds` (this process waits meanwhile, so the work is others')."""
    before = CpuTimes.now()
    time.sleep(seconds)
    return cores_busy(before, CpuTimes.now(), os.cpu_count() or 1)


def busy_cores(consequence: str, busy: float | None = None, cores: int | None = None) -> str | None:
    """A warning, saying its `consequence`, when other work keeps at least one of this machine's cores
    busy now (`busy`, default measured: `cores_busy_now`). torch's threads then wait for each other: a
    still ran 20x slower with two threads on one free core (README, OMP_NUM_THREADS). Not the load
    average: it still counts the minute before, such as the previous command's own work."""
    cores = cores or os.cpu_count() or 1
    busy = cores_busy_now() if busy is None else busy
    if busy is None or busy < BUSY_WARNING:
        return None
    return (
        f"warning: other work keeps {busy:.1f} of this machine's {cores} cores busy: {consequence}; "
        "see OMP_NUM_THREADS in the README"
    )

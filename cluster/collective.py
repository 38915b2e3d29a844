"""Where the workers of a tiled round meet: torch.distributed's gloo process groups between Ray actors.

The driver runs the rendezvous (a TCPStore: a few keys per group, never on the path of an
iteration); the workers then talk to each other directly. A group is named by the pool's
generation, a number that changes whenever its workers do, and by its size, so a round that
is redone after a worker died meets in a new group. Gloo works on CPU tensors; a GPU worker's
sums (a few MB an iteration) cross to the host and back.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import ray
import torch
import torch.distributed as dist

from engine.lbfgs import Reduce, alone

# How long a worker waits in a reduction for the others: longer than one evaluation of a share
# of tiles on the slowest worker. A worker that dies closes its connections, and the others fail
# at once; this bounds only a worker that hangs.
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class Group:
    """The rendezvous of one membership of the pool's workers."""

    host: str
    port: int
    generation: int


class Rendezvous:
    """The driver's side: a store the workers find each other through."""

    def __init__(self) -> None:
        self.host = ray.util.get_node_ip_address()
        self.store = dist.TCPStore(self.host, 0, is_master=True, wait_for_workers=False)
        self.generation = 0

    def group(self) -> Group:
        return Group(self.host, self.store.port, self.generation)

    def renew(self) -> None:
        """The workers changed (or a round failed): the next round meets in a new group."""
        self.generation += 1


class Member:
    """A worker's side: its process groups, kept while the membership lasts."""

    def __init__(self) -> None:
        self.groups: dict[tuple[Group, int], dist.ProcessGroupGloo] = {}

    def reduce(self, group: Group | None, rank: int, ranks: int) -> Reduce:
        """A sum over the `ranks` workers of `group`, of which this one is `rank`."""
        if ranks == 1 or group is None:
            return alone
        if any(g != group for g, _ in self.groups):
            self.leave()  # an older membership: its peers may be gone
        key = (group, ranks)
        if key not in self.groups:
            client = dist.TCPStore(group.host, group.port, is_master=False, timeout=TIMEOUT)
            store = dist.PrefixStore(f"{group.generation}/{ranks}/", client)
            options = dist.ProcessGroupGloo._Options()
            options._devices = [dist.ProcessGroupGloo.create_device(hostname=ray.util.get_node_ip_address())]
            options._timeout = TIMEOUT
            self.groups[key] = dist.ProcessGroupGloo(store, rank, ranks, options)
        pg = self.groups[key]

        def reduce(t: torch.Tensor) -> torch.Tensor:
            summed = t.detach().cpu().contiguous().clone()
            pg.allreduce([summed]).wait()
            return summed.to(t.device)

        return reduce

    def leave(self) -> None:
        """Drop every group: their connections close, so peers still waiting fail at once."""
        self.groups.clear()

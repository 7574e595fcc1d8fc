"""``nki.collectives``: names that library modules reference at import time.

Collective operations need several ranks, which one emulated NeuronCore cannot provide; calling
one raises a clear error instead of computing something wrong. ``ReplicaGroup`` exists so that
annotations such as ``replica_group: ReplicaGroup`` evaluate.
"""
from device.errors import UserKernelError


class ReplicaGroup:
    """A list of rank groups, e.g. ``ReplicaGroup([[0, 1, 2, 3]])``."""

    def __init__(self, groups=()):
        self.groups = tuple(tuple(g) for g in groups)

    def __eq__(self, other):
        return isinstance(other, ReplicaGroup) and other.groups == self.groups

    def __hash__(self):
        return hash(self.groups)

    def __repr__(self):
        return f"ReplicaGroup({[list(g) for g in self.groups]})"


def _unsupported(name):
    def op(*args, **kwargs):
        raise UserKernelError(f"nki.collectives.{name} needs several ranks; the emulator runs a "
                              f"single NeuronCore (LNC 1 or 2) and has no collective network")
    op.__name__ = name
    return op


for _n in ("all_gather", "all_reduce", "reduce_scatter", "all_to_all", "collective_permute",
           "collective_permute_implicit", "collective_permute_implicit_current_processing_rank_id",
           "rank_id", "send", "recv"):
    globals()[_n] = _unsupported(_n)

"""Many boards: board groups placed in worker processes or on Ray, and the
Machine that spreads boards over them. Modules are named by the side they
run on (worker, parent) and what joins them (wire, links).
"""

from actors.placement.book import GroupBook
from actors.placement.links import GroupLink, GroupLost, ProcessLink
from actors.placement.machine import Machine, MachineBoard
from actors.placement.parent import GroupActor
from actors.placement.wire import BoardSpec, GroupSpec

__all__ = [
    "BoardSpec",
    "GroupActor",
    "GroupBook",
    "GroupLink",
    "GroupSpec",
    "GroupLost",
    "Machine",
    "MachineBoard",
    "ProcessLink",
]

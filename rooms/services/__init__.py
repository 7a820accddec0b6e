"""Room writes and live actions (``<entity>_<action>(*, ...)``; see each module):

- ``rooms.py``: rooms and their member agents (sync, transactional);
- ``live.py``: connections joining/leaving rooms (async; live, per connection);
- ``nodes.py``: wingman-node registration, direct messages, stale-node sweeping;
- ``broadcast.py``: ``room_broadcast`` (history, ``room.message``, the agents' runs);
- ``history.py``: history entries written in batches (``history_flush``);
- ``limits.py``: the configurable limits.
"""

from agents.services.runs import room_topic
from rooms.services.broadcast import Sender, room_broadcast
from rooms.services.history import history_flush
from rooms.services.live import room_join, room_leave, room_members
from rooms.services.nodes import (
    node_direct,
    node_list,
    node_of,
    node_register,
    node_seen,
    node_unregister,
)
from rooms.services.rooms import (
    room_agent_add,
    room_agent_remove,
    room_create,
    room_delete,
    room_update,
)

__all__ = [
    "Sender",
    "history_flush",
    "node_direct",
    "node_list",
    "node_of",
    "node_register",
    "node_seen",
    "node_unregister",
    "room_agent_add",
    "room_agent_remove",
    "room_broadcast",
    "room_create",
    "room_delete",
    "room_join",
    "room_leave",
    "room_members",
    "room_topic",
    "room_update",
]

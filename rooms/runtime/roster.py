"""The live side of rooms: who is connected as a node, and which connections are members
of which room, across every gateway process.

Each process keeps its own connections here in memory and writes them as one cache blob
(``rooms:roster:<processId>``), refreshed every few seconds and expiring after
``BLOB_TTL`` seconds, like presence (``gateway/delivery/presence.py``): a crashed
process's nodes and members disappear with it. Readers take this process's part live and
the others' from the cache (the process index is presence's). Only this process writes its
blob, so there are no write races. Writes go through ``rooms/services/``.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

from gateway.delivery import presence
from gateway.state import cache as shared

BLOB_TTL = 30


def _blob_key(process_id: str) -> str:
    return f"rooms:roster:{process_id}"


class Roster:
    """This process's nodes and live room members (see the module docstring)."""

    def __init__(self, process_id: str) -> None:
        self.process_id = process_id
        #: nodeId → {nodeId, name, capabilities, connId, connectedAt, lastSeen}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.node_of_conn: dict[str, str] = {}
        #: roomId → connId → {connId, kind: node|client, id, name, joinedAt}
        self.members: dict[str, dict[str, dict[str, Any]]] = {}
        self.rooms_of_conn: dict[str, set[str]] = {}
        #: the other processes' node count, refreshed with the blob (cheap /health)
        self.remote_nodes = 0

    # local changes ------------------------------------------------------------------------
    def add_node(self, entry: dict[str, Any]) -> None:
        self.nodes[entry["nodeId"]] = entry
        self.node_of_conn[entry["connId"]] = entry["nodeId"]

    def remove_node(self, node_id: str) -> dict[str, Any] | None:
        entry = self.nodes.pop(node_id, None)
        if entry is not None:
            self.node_of_conn.pop(entry["connId"], None)
        return entry

    def node_for_conn(self, conn_id: str) -> dict[str, Any] | None:
        node_id = self.node_of_conn.get(conn_id)
        return self.nodes.get(node_id) if node_id else None

    def add_member(self, room_id: str, entry: dict[str, Any]) -> bool:
        """False when the connection was a member already."""
        room = self.members.setdefault(room_id, {})
        if entry["connId"] in room:
            return False
        room[entry["connId"]] = entry
        self.rooms_of_conn.setdefault(entry["connId"], set()).add(room_id)
        return True

    def remove_member(self, room_id: str, conn_id: str) -> dict[str, Any] | None:
        room = self.members.get(room_id)
        entry = room.pop(conn_id, None) if room else None
        if room is not None and not room:
            del self.members[room_id]
        rooms = self.rooms_of_conn.get(conn_id)
        if rooms is not None:
            rooms.discard(room_id)
            if not rooms:
                del self.rooms_of_conn[conn_id]
        return entry

    def is_member(self, room_id: str, conn_id: str) -> bool:
        return conn_id in self.members.get(room_id, ())

    def blob(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "members": self.members}

    # cache ---------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write this process's part for the others (nothing to do on a local cache)."""
        if shared.is_local():
            return
        await shared.run(cache.set, _blob_key(self.process_id), self.blob(), BLOB_TTL)

    async def forget(self) -> None:
        if not shared.is_local():
            await shared.run(cache.delete, _blob_key(self.process_id))

    async def others(self) -> list[dict[str, Any]]:
        """The other processes' blobs (one cache round trip after the index)."""
        if shared.is_local():
            return []
        return await shared.run(_read_others, self.process_id)

    # reads across processes ------------------------------------------------------------------
    async def all_nodes(self) -> list[dict[str, Any]]:
        nodes = list(self.nodes.values())
        for blob in await self.others():
            nodes.extend(blob.get("nodes", {}).values())
        nodes.sort(key=lambda n: n.get("connectedAt", 0))
        self.remote_nodes = len(nodes) - len(self.nodes)
        return nodes

    async def find_node(self, node_id: str) -> dict[str, Any] | None:
        if node_id in self.nodes:
            return self.nodes[node_id]
        for blob in await self.others():
            if node_id in blob.get("nodes", {}):
                return blob["nodes"][node_id]
        return None

    async def room_members(self, room_id: str) -> list[dict[str, Any]]:
        members = list(self.members.get(room_id, {}).values())
        for blob in await self.others():
            members.extend(blob.get("members", {}).get(room_id, {}).values())
        members.sort(key=lambda m: m.get("joinedAt", 0))
        return members


def _read_others(process_id: str) -> list[dict[str, Any]]:
    others = [pid for pid in presence.process_ids() if pid != process_id]
    if not others:
        return []
    return list(cache.get_many([_blob_key(pid) for pid in others]).values())


_rosters: dict[str, Roster] = {}


def roster_for(process_id: str) -> Roster:
    """This process's roster (one per gateway process, keyed by its hub's id)."""
    roster = _rosters.get(process_id)
    if roster is None:
        roster = _rosters[process_id] = Roster(process_id)
    return roster


def local_rosters() -> list[Roster]:
    return list(_rosters.values())


_room_count: list[int] = []


def set_room_count(count: int) -> None:
    """The number of rooms stored, as last counted here (after a change, or by the sweeper
    every few seconds for the changes other processes made)."""
    _room_count[:] = [count]


def stats() -> dict[str, Any]:
    """``/health`` figures: ``totalGroups`` (the rooms stored, as last counted here) and
    ``registeredNodes`` (the wingman-node nodes of every process, the others' as of the
    last refresh). ``totalNodes`` stays every connected client (nodes among them)."""
    out: dict[str, Any] = {
        "registeredNodes": sum(len(r.nodes) + r.remote_nodes for r in _rosters.values())
    }
    if _room_count:
        out["totalGroups"] = _room_count[0]
    return out


def now_ms() -> int:
    return int(time.time() * 1000)

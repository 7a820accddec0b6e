"""Every frame, param and event model of the wire protocol (design/protocol.md).

Models are pydantic v2 with undeclared fields rejected; ``schema.py`` turns them into the
JSON Schema served at ``/protocol/schema.json``. Dialect codecs live in ``dialects/``.
"""

PROTOCOL_MIN = 3
PROTOCOL_MAX = 4

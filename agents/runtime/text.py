"""Text built from many small deltas (a model's tokens)."""

from __future__ import annotations


class TextBuffer:
    """Append deltas; the parts are joined every :attr:`JOIN_EVERY` appends, so the buffer
    costs about the text's length in memory instead of one string object (~60 bytes) per
    token, and joining stays linear enough (one copy of the text per ``JOIN_EVERY`` tokens).
    """

    JOIN_EVERY = 512

    __slots__ = ("_parts",)

    def __init__(self, text: str = "") -> None:
        self._parts: list[str] = [text] if text else []

    def append(self, delta: str) -> None:
        parts = self._parts
        parts.append(delta)
        if len(parts) >= self.JOIN_EVERY:
            self._parts = ["".join(parts)]

    def __str__(self) -> str:
        text = "".join(self._parts)
        self._parts = [text] if text else []
        return text

    def __bool__(self) -> bool:
        return any(self._parts)

"""The names of the built-in tools, without importing LangChain: validating an agent's tool
list (the admin, the API, every CLI command through ``django.setup()``) must not pay for the
runtime's imports, which only a process that runs agents needs."""

from __future__ import annotations

from gateway.delivery import extensions

#: what :data:`agents.runtime.tools.BUILTIN_TOOLS` builds, by name
BUILTIN_TOOL_NAMES: tuple[str, ...] = ("list_files", "read_file", "write_file")


def is_known(name: str) -> bool:
    """A built-in tool, or one an app provides (``node:<node>:<command|*>``)."""
    return name in BUILTIN_TOOL_NAMES or extensions.tool_provider(name) is not None

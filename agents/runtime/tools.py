"""Built-in tools an agent may be allowed, confined to the session's working folder."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from langchain_core.tools import BaseTool, StructuredTool, ToolException

from gateway.delivery import extensions

MAX_READ_BYTES = 256 * 1024
MAX_LIST = 500


class OutsideFolder(ToolException, ValueError):
    """A path that resolves outside the working folder (a ``ToolException``, so the tool
    reports it to the model instead of failing the run)."""


def confine(root: Path, relative: str) -> Path:
    """``root / relative`` with symlinks resolved; refuses anything that escapes ``root``."""
    base = root.resolve()
    target = (base / relative).resolve()
    if target != base and not target.is_relative_to(base):
        raise OutsideFolder(f"{relative!r} is outside the working folder")
    return target


def _list_files(root: Path) -> Callable[..., str]:
    def list_files(path: str = ".") -> str:
        """List the files and folders at PATH inside the working folder."""
        folder = confine(root, path)
        if not folder.is_dir():
            return f"not a folder: {path}"
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
        shown = names[:MAX_LIST]
        more = f"\n... and {len(names) - MAX_LIST} more" if len(names) > MAX_LIST else ""
        return "\n".join(shown) + more if shown else "(empty)"

    return list_files


def _read_file(root: Path) -> Callable[..., str]:
    def read_file(path: str) -> str:
        """Read the text file at PATH inside the working folder."""
        target = confine(root, path)
        if not target.is_file():
            return f"no such file: {path}"
        data = target.read_bytes()[:MAX_READ_BYTES]
        return data.decode("utf-8", errors="replace")

    return read_file


def _write_file(root: Path) -> Callable[..., str]:
    def write_file(path: str, content: str) -> str:
        """Write CONTENT to the file at PATH inside the working folder (creates folders)."""
        target = confine(root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        return f"wrote {len(content.encode())} bytes to {path}"

    return write_file


BUILTIN_TOOLS: dict[str, Callable[[Path], Callable[..., str]]] = {
    "list_files": _list_files,
    "read_file": _read_file,
    "write_file": _write_file,
}


def build_tools(names: list[str], working_folder: Path) -> list[BaseTool]:
    """The allowed built-in tools, bound to ``working_folder``. Unknown names raise
    ``KeyError``; names an app provides are left to :func:`build_all_tools`."""
    builtin = tuple(name for name in names if extensions.tool_provider(name) is None)
    return list(_builtin_tools(builtin, working_folder))


@lru_cache(maxsize=512)
def _builtin_tools(names: tuple[str, ...], working_folder: Path) -> tuple[BaseTool, ...]:
    """Made once per (names, folder) and shared by every run that uses them: a tool holds
    no state besides its folder, and ``StructuredTool.from_function`` (a pydantic model of
    the signature) cost more CPU than the rest of an offline-model turn."""
    return tuple(
        StructuredTool.from_function(
            BUILTIN_TOOLS[name](working_folder), name=name, handle_tool_error=True
        )
        for name in names
    )


async def build_all_tools(names: list[str], working_folder: Path) -> list[BaseTool]:
    """Built-in tools plus those apps provide (node tools: one per node command)."""
    tools = build_tools(names, working_folder)
    for name in names:
        provider = extensions.tool_provider(name)
        if provider is not None:
            tools.extend(await provider(name))
    return tools

"""The agent runtime (LangChain) is loaded by the processes that run agents, at their start,
and by no other: ``django.setup()`` in the CLI, the admin or a migration does not pay for it."""

from __future__ import annotations

import subprocess
import sys

from tests.gateway.gateway_process import gateway_env

CHECK = """
import sys, django
django.setup()
heavy = sorted(m for m in sys.modules if m.startswith(("langchain", "langgraph", "langsmith")))
print("setup:", len(heavy), heavy[:3])
from gateway.server import common
common.tune_gc()  # what a gateway server and a Celery worker do at start
print("serving:", "agents.runtime.runner" in sys.modules, "langchain_core" in sys.modules)
"""


def test_setup_does_not_import_the_runtime_and_a_serving_process_preloads_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        env=gateway_env(tmp_path / "state"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "setup: 0 []" in result.stdout, result.stdout
    assert "serving: True True" in result.stdout, result.stdout


def test_the_tool_names_known_without_the_runtime_are_the_tools_it_builds():
    from agents.runtime.toolnames import BUILTIN_TOOL_NAMES
    from agents.runtime.tools import BUILTIN_TOOLS

    assert tuple(BUILTIN_TOOLS) == BUILTIN_TOOL_NAMES

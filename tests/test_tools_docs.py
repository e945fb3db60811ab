"""docs/tools.md documents every check id and option; the tools stay off the core's imports."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from asgisec.cli import TOOL_MODULES, build_parser
from asgisec.tools.catalog import AUDIT_CHECKS, CONFIG_CHECKS, MONITOR_ALERTS, all_ids

from .servers import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "tools.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| `([^`]+)` \| ([a-z]+)", re.MULTILINE)


def test_doc_lists_exactly_the_catalogued_ids_in_order() -> None:
    documented = [match.group(1) for match in ROW.finditer(DOC) if "." in match.group(1)]
    assert documented == all_ids()


def test_doc_severities_match_the_code() -> None:
    rows = {m.group(1): m.group(2) for m in ROW.finditer(DOC)}
    for check_id, check in {**AUDIT_CHECKS, **MONITOR_ALERTS}.items():
        assert rows[check_id] == check.severity, check_id
    for check_id in CONFIG_CHECKS:
        expected = "error" if check_id.startswith("security.E") else "warning"
        assert rows[check_id] == expected, check_id


def _tool_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: commands.choices[name] for name in ("audit", "monitor", "check")}


def test_doc_names_every_option_of_every_tool() -> None:
    assert {"asgisec.tools.audit", "asgisec.tools.monitor", "asgisec.tools.check"} <= set(
        TOOL_MODULES
    )
    for name, parser in _tool_parsers().items():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag in ("-h", "--help"):
                    continue
                assert f"`{flag}" in DOC, f"{name} {flag}"


def test_the_core_never_imports_the_tools() -> None:
    code = (
        "import sys, asgisec, asgisec.middleware, asgisec.demo; "
        "print(sorted(m for m in sys.modules if m.startswith('asgisec.tools') "
        "or m.split('.')[0] in ('httpx', 'rich', 'cryptography')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_registering_the_tools_imports_no_network_library() -> None:
    code = (
        "import sys; from asgisec.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('httpx', 'rich', 'cryptography')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"

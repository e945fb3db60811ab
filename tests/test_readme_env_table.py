"""The README's table of environment variables is generated from the config Structs."""

from __future__ import annotations

import difflib
from pathlib import Path

from asgisec.env import env_reference, iter_options

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- env-table:start -->", "<!-- env-table:end -->"
FIX = "regenerate it with `python scripts/update_readme.py`"


def test_readme_contains_the_generated_env_table_verbatim() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.count(START) == 1, f"README.md needs exactly one `{START}` line; then {FIX}"
    assert text.count(END) == 1, f"README.md needs exactly one `{END}` line; then {FIX}"
    _, _, rest = text.partition(START + "\n")
    assert rest, f"`{START}` must be on a line of its own"
    table, _, _ = rest.partition(END)
    expected = env_reference()
    diff = "\n".join(
        difflib.unified_diff(
            table.splitlines(), expected.splitlines(), "README.md", "env_reference()", lineterm=""
        )
    )
    assert table == expected, f"README.md's environment table is stale; {FIX}:\n{diff}"


def test_env_table_lists_every_variable() -> None:
    table = env_reference()
    for option in iter_options():
        assert f"| `{option.env}` |" in table

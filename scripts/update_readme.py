"""Rewrite the environment-variable table in README.md from the configuration Structs."""

from __future__ import annotations

import re
from pathlib import Path

from asgisec.env import env_reference

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- env-table:start -->\n", "<!-- env-table:end -->"

text = README.read_text(encoding="utf-8")
updated = re.sub(
    re.escape(START) + ".*?" + re.escape(END),
    lambda _: START + env_reference() + END,
    text,
    flags=re.DOTALL,
)
README.write_text(updated, encoding="utf-8")
print("README.md table up to date" if updated == text else "README.md table rewritten")

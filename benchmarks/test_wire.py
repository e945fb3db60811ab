"""A smoke run of the over-the-wire benchmark (``benchmarks/wire.py``): seconds, not minutes.

Every case is served as in a real run and answers one request the way the run assumes (200,
the same body, asgisec's headers only where asgisec is, one Redis call per request exactly
where the case says); one short wrk load goes through the real parsing path; the section
renders from it, and ``benchmarks/report.py`` keeps that section when it rewrites the page.
Nothing here is timed or compared: the numbers belong to ``python benchmarks/wire.py``.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks import report, wire
from benchmarks.wire_apps import BODY, PATH, RESPONSE, _asgisec_headers

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)

# Which Redis command each case sends once per request (slowapi: limits' own script).
CALLS = {
    wire.BARE: None,
    wire.HEADERS: None,
    wire.MEMORY: None,
    wire.REDIS: "evalsha",
    wire.UNBATCHED: "evalsha",
    wire.PING: "ping",
    wire.EVALSHA: "evalsha",
    wire.STARLETTE: None,
    wire.SLOWAPI: "evalsha",
}
ASGISEC = {wire.MEMORY, wire.REDIS, wire.UNBATCHED}


def test_the_header_count_on_the_page_is_what_asgisec_sends() -> None:
    names = [name for name, _ in _asgisec_headers()]
    assert len(names) - 2 == wire.HEADER_COUNT  # minus content-type and content-length
    assert b"x-request-id" in names


def test_every_case_serves_and_a_short_load_renders_the_section(tmp_path: Path) -> None:
    assert set(CALLS) == set(wire.CASES)
    with contextlib.ExitStack() as stack:
        bench = wire.Bench(tmp_path, tuple(wire.CASES), stack)
        with httpx.Client(trust_env=False, timeout=10.0) as client:
            for case, (port, _) in bench.servers.items():
                url = f"http://127.0.0.1:{port}{PATH}"
                headers = {"content-type": "application/json"}
                client.post(url, content=BODY, headers=headers)  # first: scripts get loaded
                before = wire.redis_calls(bench.redis_url)
                response = client.post(url, content=BODY, headers=headers)
                after = wire.redis_calls(bench.redis_url)
                assert response.status_code == 200, (case, response.text)
                assert response.content == RESPONSE, case
                assert ("x-request-id" in response.headers) == (
                    case in ASGISEC or case == wire.HEADERS
                ), case
                command = CALLS[case]
                if command is not None:
                    assert after.get(command, 0) - before.get(command, 0) == 1, case
                for name in ("evalsha", "ping"):
                    if name != command:
                        assert after.get(name, 0) == before.get(name, 0), (case, name)

        result = bench.load(wire.REDIS, connections=8, duration=1)
        assert bench.logs().get(wire.REDIS, "") == ""  # no warning, no traceback
    assert result["requests"] > 0
    assert wire.check({"cases": {wire.REDIS: [result]}}) == []
    # Every request decided on Redis (wrk's count leaves out the few still in flight).
    assert result["redis_calls"]["evalsha"] >= result["requests"]

    data: dict[str, Any] = {
        "datetime": "2026-01-01T00:00:00+00:00",
        "machine": wire.machine(),
        "settings": {
            "duration_s": 1,
            "warmup_s": 1,
            "rounds": 1,
            "connections": 8,
            "pinned": True,
            "wrk_threads": 1,
        },
        "commit": {"id": "0" * 40, "dirty": False},
        "cases": {case: [result] for case in wire.CASES},
    }
    section = wire.render(data)
    assert section.startswith(wire.START)
    assert section.rstrip().endswith(wire.END)
    assert section.count("PASS") + section.count("FAIL") == 3
    for label in wire.CASES.values():
        assert f"| {label} |" in section

    page = "# Benchmarks\n\nin-process part\n"
    spliced = wire.splice(page, section)
    assert spliced.startswith(page.rstrip("\n"))
    assert wire.splice(spliced, section) == spliced  # replaced in place, not appended again
    regenerated = f"{report.START}\nregenerated\n{report.END}"
    rewritten = report.merge(spliced, regenerated)
    assert "regenerated" in rewritten
    assert rewritten.rstrip().endswith(section.rstrip())  # the wire section is kept as it was
    assert report.merge(rewritten, regenerated) == rewritten

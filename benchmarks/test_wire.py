"""A smoke run of the over-the-wire benchmark (``benchmarks/wire.py``): seconds, not minutes.

Every case is served as in a real run and answers one request the way the run assumes (200,
the same body, the headers of its stages and only those, an untrusted Host refused where hosts
are checked: ``wire.verify``, which the run itself applies before timing; one Redis call per
request exactly where the case says); short wrk loads go through the real parsing path; the
section renders from them (whole, and from a run of one group of cases), and
``benchmarks/report.py`` keeps that section when it rewrites the page.
Nothing here is timed or compared: the numbers belong to ``python benchmarks/wire.py``.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report, wire
from benchmarks.wire_apps import ORIGIN, REQUEST_HEADERS, RESPONSE, _asgisec_headers

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
    wire.TYPICAL: None,
    wire.SLOWAPI_MEMORY: None,
    wire.PEER_TYPICAL: None,
    wire.PEER_SECURE: None,
    wire.PEER_SECWEB: None,
    wire.HOSTS: None,
    wire.SEC_HEADERS: None,
    wire.CORS: None,
    wire.RATELIMIT: None,
    wire.FULL: None,
    wire.FULL_REDIS: "evalsha",
    wire.SHIPPED: None,
}


def test_the_header_count_on_the_page_is_what_asgisec_sends() -> None:
    names = [name for name, _ in _asgisec_headers()]
    assert len(names) - 2 == wire.HEADER_COUNT  # minus content-type and content-length
    assert b"x-request-id" in names


def test_every_case_serves_and_a_short_load_renders_the_section(tmp_path: Path) -> None:
    assert set(CALLS) == set(wire.CASES) == set(wire.EXPECT)
    assert set(wire.REDIS_CASES) | set(wire.PEER_CASES) == set(wire.CASES)
    with contextlib.ExitStack() as stack:
        bench = wire.Bench(tmp_path, tuple(wire.CASES), stack)
        for case, (port, _) in bench.servers.items():
            wire.ask(port)  # first: scripts get loaded
            before = wire.redis_calls(bench.redis_url)
            status, headers, body = wire.ask(port)
            after = wire.redis_calls(bench.redis_url)
            assert status == 200, (case, body)
            assert body == RESPONSE, case
            command = CALLS[case]
            if command is not None:
                assert after.get(command, 0) - before.get(command, 0) == 1, case
            for name in ("evalsha", "ping"):
                if name != command:
                    assert after.get(name, 0) == before.get(name, 0), (case, name)
            assert wire.verify(case, port) == [], case
            if case in (wire.CORS, wire.FULL, wire.TYPICAL):  # the allowed Origin is echoed
                assert ("access-control-allow-origin", ORIGIN) in headers, case
        bench.verify()  # what run() calls: raises on any problem

        result = bench.load(wire.REDIS, connections=8, duration=1)
        full = bench.load(wire.FULL, connections=8, duration=1)  # wrk sends the Origin too
        assert bench.logs().get(wire.REDIS, "") == ""  # no warning, no traceback
        assert bench.logs().get(wire.FULL, "") == ""
    assert result["requests"] > 0
    assert full["requests"] > 0
    assert wire.check({"cases": {wire.REDIS: [result], wire.FULL: [full]}}) == []
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
    assert "not measured" not in section

    # A run of one group renders its table alone and says what it left out.
    redis_only = {**data, "cases": {case: [result] for case in wire.select("redis")}}
    part = wire.render(redis_only)
    assert part.count("PASS") + part.count("FAIL") == 3
    assert "### Results: asgisec next to its peers" not in part
    assert "the peer comparison (issue 7) was not measured" in part
    peers_only = {**data, "cases": {case: [result] for case in wire.select("peers")}}
    part = wire.render(peers_only)
    assert "PASS" not in part
    assert "FAIL" not in part
    assert f"| {wire.CASES[wire.FULL]} |" in part
    assert "the Redis table (issue 3) was not measured" in part

    page = "# Benchmarks\n\nin-process part\n"
    spliced = wire.splice(page, section)
    assert spliced.startswith(page.rstrip("\n"))
    assert wire.splice(spliced, section) == spliced  # replaced in place, not appended again
    regenerated = f"{report.START}\nregenerated\n{report.END}"
    rewritten = report.merge(spliced, regenerated)
    assert "regenerated" in rewritten
    assert rewritten.rstrip().endswith(section.rstrip())  # the wire section is kept as it was
    assert report.merge(rewritten, regenerated) == rewritten


def test_cases_option_selects_groups_and_names_in_page_order() -> None:
    assert wire.select("all") == tuple(wire.CASES)
    assert wire.select("redis") == wire.REDIS_CASES
    assert set(wire.select("peers")) == set(wire.PEER_CASES)
    assert wire.select(f"{wire.FULL}, {wire.BARE}") == (wire.BARE, wire.FULL)
    with pytest.raises(SystemExit):
        wire.select("nonesuch")
    with pytest.raises(SystemExit):
        wire.select(" , ")


def test_the_wrk_script_sends_the_request_of_every_check() -> None:
    script = wire.wrk_script()
    for name, value in REQUEST_HEADERS:
        assert f'wrk.headers["{name}"] = "{value}"' in script
    assert ("Origin", ORIGIN) in [(k.title(), v) for k, v in REQUEST_HEADERS]
    assert 'wrk.method = "POST"' in script

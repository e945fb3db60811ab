"""Rules written as framework route templates share one bucket per route (S6)."""

from __future__ import annotations

import pytest

from asgisec import RateLimitConfig, SecurityConfig, secure
from asgisec.ratelimit.limits import parse_rules

from .driver import make_scope, run


@pytest.mark.parametrize(
    ("template", "equivalent"),
    [
        ("/items/{id}", "/items/*"),
        ("/items/{id:int}/photos", "/items/*/photos"),
        ("/files/{rest:path}", "/files/**"),
        ("/a/{x}/{y}", "/a/*/*"),
        ("/items/<int:id>", "/items/*"),  # Quart / Werkzeug
        ("/items/<id>/photos", "/items/*/photos"),
        ("/files/<path:rest>", "/files/**"),
        ("/a/{x:path}/b", "/a/*/b"),  # a path converter mid-pattern is one segment
    ],
)
def test_route_templates_mean_segment_wildcards(template: str, equivalent: str) -> None:
    assert parse_rules(f"{template}=1/minute")[0].pattern == equivalent


async def _ok(scope: object, receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]


def test_s6_path_parameters_do_not_create_separate_buckets() -> None:
    config = SecurityConfig(
        rate_limit=RateLimitConfig(
            rate_limit_default="none", rate_limit_rules="/items/{id}=1/minute"
        )
    )
    app = secure(_ok, config)
    statuses = [run(app, make_scope(path=f"/items/{i}")).status for i in range(5)]
    assert statuses == [200, 429, 429, 429, 429]
    assert run(app, make_scope(path="/other")).status == 200

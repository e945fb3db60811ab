"""Real browsers: headless Chromium enforcing the policies asgisec sends.

CORS and CSP mean nothing until a browser enforces them, so these tests ask one. A page served
from one loopback origin (``http://127.0.0.1:P``) calls an API wrapped by ``secure()`` on
another (``http://localhost:Q``), both real uvicorn servers; a second page origin
(``http://127.0.0.1:R``, another port, so another origin) is the site that is *not* allowed.
Every test states what Chromium did — ``fetch`` resolved or rejected, the frame loaded or was
replaced by an error page, the inline script ran or not — and, where it matters, what reached
the application behind asgisec (the browser may send a simple request and only refuse to let
the page read the answer; a refused preflight means the real request is never sent).

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright (``playwright install`` is
never needed), headless, with a fresh profile per module. Without that binary the tests fail
with the command that installs it (``scripts/test`` does): they are never silently skipped.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import msgspec
import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from asgisec import (
    CorsConfig,
    GuardsConfig,
    HeadersConfig,
    HostsConfig,
    RateLimitConfig,
    SecurityConfig,
    secure,
)

from .live import bound_socket, live

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

INLINE_PAGE = b"""<!doctype html><html><head><title>api page</title></head><body>
<p id="p">static</p>
<script>document.getElementById("p").textContent = "inline ran";</script>
<script src="/script.js"></script>
</body></html>"""
SCRIPT = b'document.body.dataset.external = "ran";'
# CSP_NONCE: the app writes this request's nonce (scope["csp_nonce"]) into one inline script;
# another carries no nonce and a third a made-up one.
NONCE_PAGE = """<!doctype html><html><head><title>nonce page</title></head><body>
<p id="with">static</p><p id="without">static</p><p id="wrong">static</p>
<script nonce="{nonce}">document.getElementById("with").textContent = "ran";</script>
<script>document.getElementById("without").textContent = "ran";</script>
<script nonce="AAAAAAAAAAAAAAAAAAAAAAAA">
document.getElementById("wrong").textContent = "ran";</script>
</body></html>"""
FRAME_PAGE = b"<!doctype html><html><body><p id='framed'>framed content</p></body></html>"


# --------------------------------------------------------------------------- the two sides


class Seen:
    """Requests as they arrived: at the server (outside asgisec) and at the app (inside)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at_server: list[tuple[str, str]] = []
        self.at_app: list[dict[str, Any]] = []

    def server_saw(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.at_server if (m, p) == (method, path))

    def app_saw(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.at_app if r["path"] == path]


async def _send_body(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def api_app(seen: Seen) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The protected API: JSON naming what it received, an HTML page, a script, a frame."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        path = scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with seen.lock:
            seen.at_app.append({"method": scope["method"], "path": path, "headers": headers})
        if path == "/page":
            await _send_body(send, 200, b"text/html; charset=utf-8", INLINE_PAGE)
        elif path == "/script.js":
            await _send_body(send, 200, b"text/javascript", SCRIPT)
        elif path == "/frame":
            await _send_body(send, 200, b"text/html; charset=utf-8", FRAME_PAGE)
        elif path == "/nonce-page":
            page = NONCE_PAGE.format(nonce=scope.get("csp_nonce", "")).encode()
            await _send_body(send, 200, b"text/html; charset=utf-8", page)
        else:
            body = msgspec.json.encode(
                {"method": scope["method"], "path": path, "cookie": headers.get("cookie")}
            )
            await _send_body(send, 200, b"application/json", body)

    return app


def recorded(app: Any, seen: Seen) -> Any:
    """Outside asgisec: every request the server handed over, preflights included."""

    async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            with seen.lock:
                seen.at_server.append((scope["method"], scope["path"]))
        await app(scope, receive, send)

    return recorder


async def page_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The web site calling the API: a blank page; the tests run their script in it."""
    if scope["type"] != "http":
        return
    await _send_body(send, 200, b"text/html; charset=utf-8", b"<!doctype html><title>site</title>")


# --------------------------------------------------------------------------- configurations


def api_config(site: str, **headers: str) -> SecurityConfig:
    """The API's configuration: ``site`` may call it with credentials; one limited route."""
    return SecurityConfig(
        hosts=HostsConfig(trusted_hosts=("localhost", "127.0.0.1")),
        headers=HeadersConfig(**headers),  # type: ignore[arg-type]
        cors=CorsConfig(
            allowed_origins=(site,),
            allowed_methods=("GET", "POST"),
            allowed_headers=("content-type", "x-api-key"),
            allow_credentials=True,
        ),
        rate_limit=RateLimitConfig(rate_limit_default="none", rate_limit_rules="/limited=1/minute"),
    )


class World:
    """Every server of the module: the site, the other site, and one API per configuration."""

    def __init__(self, site: str, other_site: str, apis: dict[str, str], seen: Seen) -> None:
        self.site = site
        self.other_site = other_site
        self.apis = apis
        self.seen = seen


# API variants, by name: header settings on top of api_config (CORS is the same for all
# except "no-credentials").
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},  # the shipped defaults: CSP default-src 'none' + frame-ancestors, XFO DENY
    "xfo-only": {"csp_policy": ""},
    "frame-ancestors-only": {"x_frame_options": "", "csp_policy": "frame-ancestors 'none'"},
    "no-framing-headers": {"x_frame_options": "", "csp_policy": ""},
    "script-self": {"csp_policy": "default-src 'none'; script-src 'self'"},
}


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    seen = Seen()
    site_sock, other_sock = bound_socket(), bound_socket()
    site = f"http://127.0.0.1:{site_sock.getsockname()[1]}"
    other_site = f"http://127.0.0.1:{other_sock.getsockname()[1]}"
    with ExitStack() as stack:
        stack.enter_context(live(page_app, sock=site_sock))
        stack.enter_context(live(page_app, sock=other_sock))
        apis: dict[str, str] = {}
        for name, headers in VARIANTS.items():
            app = recorded(secure(api_app(seen), api_config(site, **headers)), seen)
            apis[name] = _localhost(stack.enter_context(live(app)).url)
        nonced = msgspec.structs.replace(
            api_config(site), guards=GuardsConfig(csp_nonce=True)
        )  # the shipped CSP (default-src 'none') with CSP_NONCE=true
        app = recorded(secure(api_app(seen), nonced), seen)
        apis["nonce"] = _localhost(stack.enter_context(live(app)).url)
        no_credentials = SecurityConfig(
            hosts=HostsConfig(trusted_hosts=("localhost",)),
            cors=CorsConfig(allowed_origins=(site,), allow_credentials=False),
            rate_limit=RateLimitConfig(rate_limit_default="none"),
        )
        app = recorded(secure(api_app(seen), no_credentials), seen)
        apis["no-credentials"] = _localhost(stack.enter_context(live(app)).url)
        for name, credentials in (("wildcards", False), ("wildcards-credentials", True)):
            wildcards = SecurityConfig(
                hosts=HostsConfig(trusted_hosts=("localhost",)),
                cors=CorsConfig(
                    allowed_origins=(site,),
                    allowed_methods=("*",),
                    allowed_headers=("*",),
                    allow_credentials=credentials,
                ),
                rate_limit=RateLimitConfig(rate_limit_default="none"),
            )
            app = recorded(secure(api_app(seen), wildcards), seen)
            apis[name] = _localhost(stack.enter_context(live(app)).url)
        yield World(site, other_site, apis, seen)


def _localhost(url: str) -> str:
    return url.replace("http://127.0.0.1:", "http://localhost:")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)")
    profile: Path = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    tab = browser.new_page()
    try:
        yield tab
    finally:
        tab.close()


FETCH = """async ([url, init]) => {
  try {
    const response = await fetch(url, init);
    return {ok: true, status: response.status, body: await response.text(),
            requestId: response.headers.get("x-request-id"),
            retryAfter: response.headers.get("retry-after")};
  } catch (error) {
    return {ok: false, error: String(error)};
  }
}"""


def fetch_from(page: Page, origin: str, url: str, **init: Any) -> dict[str, Any]:
    """Open ``origin`` in the tab, then run ``fetch(url, init)`` from it: what the page sees."""
    if not page.url.startswith(origin):
        page.goto(origin + "/")
    result: dict[str, Any] = page.evaluate(FETCH, [url, init])
    return result


# --------------------------------------------------------------------------- CORS


def test_allowed_origin_reads_the_response(world: World, page: Page) -> None:
    url = world.apis["default"] + "/data?case=allowed"
    result = fetch_from(page, world.site, url)
    assert result["ok"], result
    assert result["status"] == 200
    assert msgspec.json.decode(result["body"])["path"] == "/data"
    assert result["requestId"]  # an exposed header (CORS_EXPOSE_HEADERS) is readable
    [request] = world.seen.app_saw("/data")[-1:]
    assert request["headers"]["origin"] == world.site


def test_other_origin_cannot_read_a_simple_request(world: World, page: Page) -> None:
    """A simple GET is sent (CORS is not a firewall), but the page never sees the answer."""
    url = world.apis["default"] + "/data?case=other"
    before = len(world.seen.app_saw("/data"))
    result = fetch_from(page, world.other_site, url)
    assert not result["ok"], result
    assert "Failed to fetch" in result["error"]
    requests = world.seen.app_saw("/data")[before:]
    assert [r["headers"]["origin"] for r in requests] == [world.other_site]


def test_preflighted_request_with_custom_headers(world: World, page: Page) -> None:
    """JSON POST with a granted custom header: preflight answered by asgisec, then the POST."""
    api = world.apis["default"]
    init = {
        "method": "POST",
        "headers": {"content-type": "application/json", "x-api-key": "k-123"},
        "body": '{"a": 1}',
    }
    result = fetch_from(page, world.site, api + "/preflighted", **init)
    assert result["ok"], result
    assert result["status"] == 200
    assert world.seen.server_saw("OPTIONS", "/preflighted") == 1  # the browser asked first
    [request] = world.seen.app_saw("/preflighted")  # the preflight never reached the app
    assert request["method"] == "POST"
    assert request["headers"]["x-api-key"] == "k-123"


def test_preflight_is_cached_for_cors_max_age(world: World, page: Page) -> None:
    api = world.apis["default"]
    init = {"method": "POST", "headers": {"x-api-key": "k"}, "body": "x"}
    for _ in range(3):
        assert fetch_from(page, world.site, api + "/cached", **init)["ok"]
    assert world.seen.server_saw("OPTIONS", "/cached") == 1  # Access-Control-Max-Age: 600
    assert len(world.seen.app_saw("/cached")) == 3


@pytest.mark.parametrize(
    ("case", "init"),
    [
        ("header", {"method": "POST", "headers": {"x-not-granted": "1"}, "body": "x"}),
        ("method", {"method": "DELETE"}),
    ],
    ids=["header-not-granted", "method-not-granted"],
)
def test_browser_refuses_what_the_preflight_did_not_grant(
    world: World, page: Page, case: str, init: dict[str, Any]
) -> None:
    path = f"/not-granted-{case}"
    result = fetch_from(page, world.site, world.apis["default"] + path, **init)
    assert not result["ok"], result
    assert world.seen.server_saw("OPTIONS", path) == 1
    assert world.seen.app_saw(path) == []  # the real request was never sent


def test_preflight_from_other_origin_is_refused_and_the_request_never_sent(
    world: World, page: Page
) -> None:
    init = {"method": "POST", "headers": {"content-type": "application/json"}, "body": "{}"}
    result = fetch_from(page, world.other_site, world.apis["default"] + "/other-post", **init)
    assert not result["ok"], result
    assert world.seen.server_saw("OPTIONS", "/other-post") == 1  # answered 403 by asgisec
    assert world.seen.app_saw("/other-post") == []


def test_credentialed_request_with_allow_credentials(world: World, page: Page) -> None:
    """ALLOW_CREDENTIALS=true: the API's cookie goes along and the page reads the answer.

    The API is addressed as ``127.0.0.1`` here: same *site* as the page (another port is
    another origin, but cookies ignore ports), so Chromium's third-party cookie blocking,
    which is not asgisec's business, stays out of the way.
    """
    api = world.apis["default"].replace("http://localhost:", "http://127.0.0.1:")
    assert api != world.site  # still cross-origin: CORS applies
    page.context.add_cookies([{"name": "session", "value": "s1", "url": api, "sameSite": "Lax"}])
    try:
        result = fetch_from(page, world.site, api + "/with-cookie", credentials="include")
        assert result["ok"], result
        assert msgspec.json.decode(result["body"])["cookie"] == "session=s1"
        # Without credentials, the same call sends no cookie.
        plain = fetch_from(page, world.site, api + "/without-cookie")
        assert plain["ok"], plain
        assert msgspec.json.decode(plain["body"])["cookie"] is None
    finally:
        page.context.clear_cookies()


def test_credentialed_request_without_allow_credentials_is_unreadable(
    world: World, page: Page
) -> None:
    """ALLOW_CREDENTIALS=false: no Access-Control-Allow-Credentials, so the browser refuses."""
    api = world.apis["no-credentials"]
    uncredentialed = fetch_from(page, world.site, api + "/data?case=plain")
    assert uncredentialed["ok"], uncredentialed  # the origin itself is allowed
    result = fetch_from(page, world.site, api + "/data?case=creds", credentials="include")
    assert not result["ok"], result


def test_credentialed_request_from_other_origin_is_unreadable(world: World, page: Page) -> None:
    result = fetch_from(
        page, world.other_site, world.apis["default"] + "/data?case=x", credentials="include"
    )
    assert not result["ok"], result


@pytest.mark.parametrize("variant", ["wildcards", "wildcards-credentials"])
def test_wildcard_methods_and_headers_grant_any_method_and_authorization(
    world: World, page: Page, variant: str
) -> None:
    """``ALLOWED_METHODS=*`` and ``ALLOWED_HEADERS=*`` mean any, as the operator wrote them.

    The Fetch standard makes ``*`` literal in credentialed preflights, and never lets it stand
    for ``Authorization``; asgisec grants what was asked instead, so PUT with a bearer token
    (and cookies, with credentials) is allowed in both variants.
    """
    path = f"/wildcards-{variant}"
    init: dict[str, Any] = {
        "method": "PUT",
        "headers": {"authorization": "Bearer t-1", "x-custom": "1"},
        "body": "x",
    }
    if variant == "wildcards-credentials":
        init["credentials"] = "include"
    result = fetch_from(page, world.site, world.apis[variant] + path, **init)
    assert result["ok"], result
    assert world.seen.server_saw("OPTIONS", path) == 1
    [request] = world.seen.app_saw(path)
    assert request["method"] == "PUT"
    assert request["headers"]["authorization"] == "Bearer t-1"


def test_allowed_origin_reads_asgisecs_429(world: World, page: Page) -> None:
    """Refusals keep the CORS grant: browser code can read a 429 and its Retry-After."""
    url = world.apis["default"] + "/limited"
    first = fetch_from(page, world.site, url)
    assert first["ok"], first
    assert first["status"] == 200
    second = fetch_from(page, world.site, url)
    assert second["ok"], second
    assert second["status"] == 429
    assert msgspec.json.decode(second["body"])["error"] == "rate_limited"
    assert int(second["retryAfter"]) >= 1


# --------------------------------------------------------------------------- framing


def frame_outcome(page: Page, site: str, src: str) -> str:
    """Embed ``src`` in an iframe on ``site``: ``"loaded"`` or ``"blocked"`` (Chromium's error
    page replaces a frame its response headers forbid)."""
    page.goto(site + "/")
    page.evaluate(
        """(src) => new Promise((resolve) => {
             const frame = document.createElement("iframe");
             frame.addEventListener("load", () => resolve(true));
             frame.src = src;
             document.body.appendChild(frame);
           })""",
        src,
    )
    [frame] = page.main_frame.child_frames
    if frame.url == src and frame.locator("#framed").count() == 1:
        return "loaded"
    return "blocked"


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("default", "blocked"),
        ("xfo-only", "blocked"),
        ("frame-ancestors-only", "blocked"),
        ("no-framing-headers", "loaded"),  # the control: the same page can be framed
    ],
)
def test_framing(world: World, page: Page, variant: str, expected: str) -> None:
    src = world.apis[variant] + "/frame"
    assert frame_outcome(page, world.site, src) == expected


# --------------------------------------------------------------------------- CSP


def open_api_page(page: Page, api: str) -> tuple[str, str | None, list[str]]:
    """Navigate to the API's HTML page: (paragraph text, external script mark, CSP reports)."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(api + "/page")
    page.wait_for_load_state("load")
    text = page.locator("#p").text_content() or ""
    external = page.evaluate("document.body.dataset.external ?? null")
    return text, external, [m for m in messages if "Content Security Policy" in m]


def test_default_csp_blocks_inline_and_external_scripts(world: World, page: Page) -> None:
    text, external, violations = open_api_page(page, world.apis["default"])
    assert text == "static"
    assert external is None
    assert any("inline script" in v for v in violations), violations


def test_script_src_self_runs_same_origin_script_but_not_inline(world: World, page: Page) -> None:
    text, external, violations = open_api_page(page, world.apis["script-self"])
    assert text == "static"  # the inline script was refused
    assert external == "ran"  # /script.js from the API's own origin ran
    assert any("inline script" in v for v in violations), violations


def test_without_csp_the_inline_script_runs(world: World, page: Page) -> None:
    """The control: the same page, no CSP, and the inline script does run."""
    text, external, violations = open_api_page(page, world.apis["no-framing-headers"])
    assert text == "inline ran"
    assert external == "ran"
    assert violations == []


def test_csp_nonce_runs_the_nonced_inline_script_only(world: World, page: Page) -> None:
    """CSP_NONCE=true: the inline script carrying this response's nonce runs; one without a
    nonce, and one with a nonce of its own making, are refused by the browser."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    response = page.goto(world.apis["nonce"] + "/nonce-page")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "'nonce-" in policy
    page.wait_for_load_state("load")
    outcome = {key: page.locator(f"#{key}").text_content() for key in ("with", "without", "wrong")}
    assert outcome == {"with": "ran", "without": "static", "wrong": "static"}
    violations = [m for m in messages if "Content Security Policy" in m]
    assert len([v for v in violations if "inline script" in v]) == 2, violations
    # A fresh nonce per response: the one the page carried is not reused.
    again = page.goto(world.apis["nonce"] + "/nonce-page")
    assert again is not None
    assert again.headers["content-security-policy"] != policy

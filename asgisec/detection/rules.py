"""The detection rules: one compiled alternation per category, written against decoded text.

Every rule runs on text that :mod:`.decode` has already decoded and that the detector has
lower-cased (and, for SQL, stripped of comments and folded to single spaces), so the rules
never need case-insensitive flags, ``%27`` or ``/**/`` variants.

The rules are written for precision, after OWASP CRS and libinjection: a keyword alone never
flags (``select a plan``, ``union station``, ``O'Brien``), a keyword in a grammatical SQL,
HTML, shell or path context does. Backtracking is bounded by construction: no quantified
group contains another quantifier over an overlapping class, and every gap between two
anchors is a bounded ``{0,N}`` run, so each rule is linear in its input
(:func:`check_pattern` enforces the same for operators' custom patterns).

Scanner user agents are matched as tokens (``vega`` matches ``Vega/1.0``, never
``veganism.social``, CRS #4776) and only tag a request: a scanner with a browser user agent is
caught by the payload rules (audit E12).
"""

from __future__ import annotations

import re
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

__all__ = [
    "CATEGORIES",
    "RULES",
    "SCANNERS",
    "SCANNER_RE",
    "Rule",
    "check_pattern",
    "scanner_in",
]

# Every category a finding can have, in the order rules are tried.
CATEGORIES = ("scanner", "traversal", "sqli", "xss", "cmdi", "crlf", "evasion", "custom")

SCANNERS = (
    "acunetix", "appscan", "arachni", "brutus", "bsqlbf", "cmsmap", "commix", "dirb",
    "dirbuster", "dotdotpwn", "droopescan", "feroxbuster", "ffuf", "fimap", "gobuster",
    "grabber", "havij", "hydra", "jaeles", "joomscan", "jorgee", "masscan", "morfeus",
    "mysqloit", "n-stealth", "nessus", "netsparker", "nikto", "nmap", "nuclei", "openvas",
    "fuzz faster u fool", "pangolin", "paros", "skipfish", "sqlmap", "sqlninja",
    "struts-pwn", "vega", "w3af",
    "webinspect", "webshag", "whatweb", "wfuzz", "wpscan", "xsstrike", "zgrab", "zmeu",
)  # fmt: skip
# ^ CRS scanners-user-agents.data, minus generic clients (curl, python-requests, wget,
# Go-http-client) that CRS also leaves out (D11): those are tools people script with.

# A token: the name bounded by anything that is not a letter or digit ("/", " ", "(", ".").
SCANNER_RE = re.compile(
    r"(?<![a-z0-9])(" + "|".join(re.escape(name) for name in SCANNERS) + r")(?![a-z0-9])"
)
# Python's `re` tries all fifty names at every position of an agent (~10 µs for a browser's
# 100 characters), so the detector asks a cheaper necessary condition first, on the raw bytes:
# a name's first token (its first run of letters and digits) is a whole token of the agent
# whenever SCANNER_RE matches, since a name starts and ends at a token boundary.
SCANNER_FIRST_TOKENS = frozenset(
    re.split(r"[^a-z0-9]+", name)[0].encode("ascii") for name in SCANNERS
)
_SEPARATORS = bytes.maketrans(
    bytes(b for b in range(256) if not (0x61 <= b <= 0x7A or 0x30 <= b <= 0x39)),
    b" " * (256 - 36),
)


def scanner_in(user_agent: bytes) -> str | None:
    """The scanner a user agent names (matched case-insensitively, as a token), or None."""
    if SCANNER_FIRST_TOKENS.isdisjoint(user_agent.lower().translate(_SEPARATORS).split()):
        return None
    match = SCANNER_RE.search(user_agent.decode("latin-1").lower())
    return None if match is None else match.group(1)


def _spaced(word: str) -> str:
    """``javascript`` with optional whitespace or NULs between letters (``java\\tscript:``)."""
    return r"[\s\x00]*".join(re.escape(ch) for ch in word)


# ----------------------------------------------------------------------------- traversal

_TRAVERSAL = [
    # "..", between separators (or at an end): ../ ..\ ..;/ (Tomcat path parameters, E6).
    # Not report..final.pdf, /get/foo../1, /get/..foo, "wait... what" (D12).
    r"(?:^|[/\\;])\.\.(?:[/\\;]|$)",
    # The files a traversal or probe is after.
    r"(?:^|[/\\])etc[/\\]+(?:passwd|shadow|group|hosts|issue|sudoers|crontab|fstab|"
    r"master\.passwd)(?![a-z0-9])",
    r"(?:^|[/\\])proc[/\\]+(?:self|\d{1,7})[/\\]+(?:environ|cmdline|maps|fd|mem|status)",
    r"(?:^|[/\\])\.(?:env|git|svn|hg|bzr|htaccess|htpasswd|aws|ssh|docker|kube|npmrc|"
    r"bash_history|ds_store)(?:$|[/\\.~]|\.bak|\.old)",
    r"(?:^|[/\\])(?:wp-config\.php|web\.config|boot\.ini|win\.ini|id_rsa|id_ed25519|"
    r"config\.php\.bak|phpinfo\.php|server-status|\.well-known/\.\.)(?![a-z0-9])",
    r"(?:^|[^a-z])[c-e]:\\+(?:windows|winnt|boot\.ini|inetpub)",
    r"(?:^|[/\\])var[/\\]+(?:log|lib/mysql|run/secrets)[/\\]",
    r"(?:^|[^a-z])(?:php|file|expect|phar|zip|data|glob)://(?:filter|input|/|[a-z]:|"
    r"\w{0,40}/etc)",
    r"\x00",  # a NUL cuts a path short in C-based file APIs (%00 before a fixed extension)
]

# ----------------------------------------------------------------------------- SQL injection

# A quote closing the application's literal, then SQL. Not "O'Brien", "Conan O'Brien's",
# "yes, bob's" (D1): a lone quote needs SQL grammar right after it. A number closing a numeric
# literal needs more ("1 or 2 tickets", "price between 10 and 20" are prose).
_QUOTE = r"['\"`]\)?"
_SQLI = [
    r"\bunion(?: all| distinct)? select\b",
    r"\bunion(?: all| distinct)? \(? ?select\b",
    # ' or 1=1, " or ""=", ') or ('a'='a, 1 and 1=2, ' || 'a'='a, ' or true
    _QUOTE + r" ?(?:or|and|xor|\|\||&&) ?[\w'\"(]{1,30}[\w'\" ]{0,30}?"
    r"(?:=|<>|!=|<|>| like | is | between | in ?\(| rlike | regexp )",
    _QUOTE + r" ?(?:or|and|xor|\|\||&&) ?(?:not )?(?:true|false|null|\d{1,10}|sleep|benchmark)\b"
    r" ?(?:--|#|;|$|\)|'|/\*)",
    r"(?:^|[^\w.,])-?\d{1,10}\)? (?:or|and|xor|\|\||&&) \(?['\"]?\d{1,10}['\"]?\)? ?"
    r"(?:=|<>|!=|<|>) ?\(?['\"]?\d",
    r"\d\)? (?:or|and|xor) (?:true|false|sleep ?\(|benchmark ?\()",
    r"'[\w ]{0,20}' ?= ?'",  # 'a'='a
    # ' -- , admin'#, ' /*: a quote, then a comment that swallows the rest of the query
    r"['\"`]\)? ?(?:--|#|/\*)[\s\-+]{0,5}$",
    r"['\"`]\)? ?; ?(?:select|insert|update|delete|drop|create|alter|exec|execute|declare|"
    r"shutdown|truncate|grant)\b",
    # stacked queries after any literal
    r"; ?(?:drop (?:table|database|schema|user)|delete from|insert into|truncate table|"
    r"update \w{1,64} set|exec(?:ute)? (?:master|xp_|sp_)|shutdown\b|declare @|"
    r"select [\w*@(]{1,40}(?:,| from))",
    r"\b(?:sleep|pg_sleep) ?\( ?\d{1,6}(?:\.\d{1,3})? ?\)",
    r"\bbenchmark ?\( ?\d{2,12} ?,",
    r"\bwaitfor (?:delay|time) '",
    r"\b(?:extractvalue|updatexml|load_file|utl_inaddr\.get_host_address|dbms_pipe\.receive_message|"
    r"ctxsys\.drithsx\.sn|xp_cmdshell|sp_oacreate|sp_executesql|exp ?\( ?~) ?\(",
    r"\binto (?:out|dump)file\b",
    r"\b(?:information_schema|pg_catalog|pg_shadow|sysobjects|syscolumns|sys\.tables|"
    r"sqlite_master|mysql\.user|all_tables|user_tables|msysobjects)\b",
    r"@@(?:version|datadir|hostname|basedir|servername)\b",
    r"\b(?:version|database|user|current_user|system_user|schema) ?\( ?\)",
    r"\b(?:group_)?concat(?:_ws)? ?\(.{0,80}?"
    r"(?:0x[0-9a-f]{2,}|char ?\(|@@|select\b|version|user ?\()",
    r"\bchar ?\( ?\d{1,3}(?: ?, ?\d{1,3}){2,40}",
    r"\bselect (?:\*|null|\d{1,10}|count ?\(|@@|'|\"|char ?\(|concat|version|user|database|"
    r"[\w.]{1,64}(?: ?, ?[\w.]{1,64}){1,20}) ?(?:from\b|--|#|;|limit\b|where\b|into\b)",
    r"\bselect [\w.*]{1,64} from [\w.]{1,64} ?(?:where|limit|order by|group by|--|#|;|\))",
    r"\( ?select (?:\d|\*|null|@@|count ?\(|char ?\(|concat|version|user ?\(|database ?\(|"
    r"if ?\(|case\b|sleep|benchmark|\(|[\w.]{1,64}(?: ?, ?[\w.]{1,64}){0,20} from [\w.]{1,64}"
    r"(?: where\b| limit\b| order\b| group\b|\)| ?--| ?#|$))",
    r"\border by \d{1,3} ?(?:--|#|;|$|/\*)",
    r"['\"`]\)? ?(?:order|group) by \d",
    r"\bhaving \d{1,10} ?= ?\d{1,10}",
    r"\b(?:and|or) \d{1,10} ?= ?\d{1,10}\b",
    r"\bcase when .{0,100}? then\b",
    r"\bif ?\( ?\d{1,10} ?[=<>] ?\d{1,10} ?,",
    r"\bcast ?\(.{0,80}? as (?:int|char|varchar|numeric|text|signed)\b",
    r"\bconvert ?\( ?(?:int|varchar|char) ?,",
    r"\b(?:like|rlike|regexp) '%?' ?(?:--|#|or\b)",
    r"\bprocedure analyse ?\(",
    r"'\s?\+\s?'|'\s?\|\|\s?'",  # string concatenation across the closed literal
]

# ----------------------------------------------------------------------------- XSS

_XSS = [
    r"<[\s/]{0,3}script\b",
    r"<[\s/]{0,3}/script",
    # an event handler inside a tag: <img src=x onerror=...>, <svg/onload=...>
    r"<[a-z][\w:-]{0,30}[\s/][^>]{0,400}?\bon[a-z]{3,30} ?=",
    r"<[\s/]{0,3}(?:iframe|frame|frameset|object|embed|applet|svg|math|meta|base|link|style|"
    r"form|isindex|marquee|xss|template|portal|noscript|img|image|video|audio|body|input|"
    r"textarea|button|details|dialog|keygen)\b",
    # markup with attributes: rich-text HTML is flagged by default (D8); exempt such routes
    r"<[a-z][\w-]{0,30} [a-z-]{1,30} ?= ?['\"\w]",
    _spaced("javascript") + r"[\s\x00]*:(?!\s)",
    _spaced("vbscript") + r"[\s\x00]*:",
    r"\bdata ?: ?(?:text/html|image/svg\+xml|application/x-javascript|text/javascript)",
    r"\b(?:alert|prompt|confirm|eval|settimeout|setinterval|execscript) ?[(`] ?(?:\d|document|"
    r"window|this|top|self|parent|origin|location|['\"`/]|string\.fromcharcode|atob)",
    r"\b(?:document ?\. ?(?:cookie|domain|write|location)|window ?\. ?location|"
    r"\.innerhtml ?=|fromcharcode ?\(|\.appendchild ?\(|createelement ?\()",
    r"\bexpression ?\(|-moz-binding|behavior ?:|@import\b|\bsrcdoc ?=|\bformaction ?=",
    r"['\"`] ?(?:;|\+|-|\|\||&&|\)|,) ?(?:alert|prompt|confirm|eval|fetch|import) ?\(",
    r"\{\{.{0,80}?(?:constructor|\$on|\$eval|__proto__|\[\s*['\"]\w+['\"]\s*\]).{0,80}?\}\}",
]

# ----------------------------------------------------------------------------- commands

_SHELL = (
    r"(?:cat|ls|id|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|ksh|python[23]?|perl|"
    r"ruby|php|ping|nslookup|dig|host|echo|rm|chmod|chown|powershell|pwsh|cmd|certutil|sleep|"
    r"busybox|telnet|ifconfig|ipconfig|hostname|netstat|type|dir|head|tail|more|less|touch|"
    r"mkdir|cp|mv|find|grep|awk|sed|env|set|printenv|kill|pkill|crontab|sudo|su|base64|xxd|"
    r"tftp|ftp|scp|ssh|systeminfo|tasklist|net|reg|bitsadmin|mshta|rundll32|regsvr32|"
    r"socat|openssl|nohup|timeout|expr|exec|eval)"
)
_SHELL_ARG = r"\s{1,5}(?:[-/.$~'\"\\<>|]|\d|https?:|\w{1,40}[./]\w|\$\{)"
# Commands that mean something with no argument at all ("& more" and "; set" are prose).
_SHELL_ALONE = (
    r"(?:id|whoami|uname|ifconfig|ipconfig|hostname|pwd|ls|env|printenv|systeminfo|tasklist|"
    r"netstat|ps)(?:\.exe)?\s{0,5}(?:$|[;&|#`)])"
)
_CMDI = [
    # a command after a separator, with shell-looking arguments, or one that needs none
    r"(?:[;&|\n`]|\$\()\s{0,5}" + _SHELL + r"(?:\.exe)?" + _SHELL_ARG,
    r"(?:[;&|\n`]|\$\()\s{0,5}" + _SHELL_ALONE,
    r"^\s{0,5}" + _SHELL + r"\s{1,5}(?:/etc/|/bin/|/dev/tcp|-[a-z]{1,4}\s{1,5}/|https?://)",
    r"[;&|\n`]\s{0,5}echo\s{1,5}[\w'\"$]",  # ; echo canary, the first probe of commix
    r"\$\(\s{0,5}[a-z/]",  # $(id), $(/bin/sh ...)
    r"`\s{0,5}" + _SHELL + r"\b[^`]{0,200}`",
    r"(?:^|[^\w/])/(?:usr/)?s?bin/(?:ba|z|k|c|tc|da)?sh\b",
    r"(?:^|[^\w/])/(?:usr/)?s?bin/(?:cat|ls|id|nc|wget|curl|perl|python[23]?|ping|whoami)\b",
    r"/dev/(?:tcp|udp)/",
    r"\$\{ifs\}|\$ifs\b|\$\{path:0:1\}",
    r"\bcmd(?:\.exe)?\s{1,5}/[ck]\b",
    r"\bpowershell(?:\.exe)?\s{1,5}-(?:e|en|enc|encodedcommand|c|command|nop|w|ep)\b",
    r"\(\s{0,3}\)\s{0,3}\{\s{0,3}:\s{0,3};\s{0,3}\}\s{0,3};",  # shellshock
    r"\$\{\s{0,3}(?:jndi|env|sys|java|lower|upper|date|::-)\s{0,3}:",  # log4shell lookups
    r"\|\|\s{0,3}" + _SHELL + r"\b",
]

# ----------------------------------------------------------------------------- CRLF / headers

_CRLF = [
    # a line break followed by a header line: response splitting, header or log injection
    r"[\r\n]\s{0,5}[a-z][\w-]{0,40}\s{0,5}:",
    # A body of the attacker's making after the headers. Two breaks, not ``{2,}``: a search
    # finds a longer run by its last two, and an unbounded run before a literal that is not
    # there is retried from every position (quadratic in a body of line breaks).
    r"[\r\n]{2}\s{0,5}<",
    r"[\u560a\u560d]",  # U+560A/U+560D: servers that truncate to latin-1 turn them into LF/CR
]


class Rule:
    """One category's compiled alternation, its gate, and the reason its findings carry.

    The gate is a necessary condition, checked first because it is cheap: every pattern of
    the category needs one of the gate's characters or words to match at all (Python's
    ``re`` scans a character class or a set of literal words at C speed, where the full
    alternation is tried at every position). A value that fails the gate cannot match; the
    corpus tests and the rule-by-rule gate test keep the two in step.
    """

    __slots__ = ("category", "gate", "pattern", "reason")

    def __init__(self, category: str, patterns: list[str], reason: str, gate: str) -> None:
        for text in (*patterns, gate):
            check_pattern(text)
        self.category = category
        self.reason = reason
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns))
        self.gate = re.compile(gate)


# --------------------------------------------------------------------------- pattern safety

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", -1)}


def _walk(items: Any, inside_unbounded: bool) -> None:
    for op, value in items:
        if op in _REPEATS:
            _, high, sub = value
            unbounded = high == sre_parse.MAXREPEAT or high > 1000
            if inside_unbounded and high > 1 and _has_repeat(sub):
                raise ValueError("a repeated group containing another repetition")
            if unbounded and _has_repeat(sub):
                raise ValueError("an unbounded repetition of a group that itself repeats")
            _walk(sub, inside_unbounded or unbounded)
        elif op is sre_parse.SUBPATTERN:
            _walk(value[-1], inside_unbounded)
        elif op is sre_parse.BRANCH:
            for branch in value[1]:
                _walk(branch, inside_unbounded)
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            _walk(value[1], inside_unbounded)
        elif op is sre_parse.GROUPREF or op is sre_parse.GROUPREF_EXISTS:
            raise ValueError("back-references")


def _has_repeat(items: Any) -> bool:
    for op, value in items:
        if op in _REPEATS and value[1] > 1:
            return True
        if op is sre_parse.SUBPATTERN and _has_repeat(value[-1]):
            return True
        if op is sre_parse.BRANCH and any(_has_repeat(b) for b in value[1]):
            return True
    return False


def check_pattern(text: str) -> re.Pattern[str]:
    """Compile ``text`` if it cannot backtrack catastrophically; raise ValueError if not.

    Refused: a repetition of a group that itself repeats (``(a+)+``, ``(\\w*,)*``), unless
    both are bounded and small, and back-references. This is the shape of every ReDoS in
    CRS's history; linear-time alternatives always exist.
    """
    try:
        compiled = re.compile(text)
        _walk(sre_parse.parse(text), inside_unbounded=False)
    except re.error as exc:
        raise ValueError(f"not a regular expression ({exc})") from None
    return compiled


def _words(*words: str) -> str:
    return "|".join(re.escape(word) for word in words)


RULES = (
    Rule(
        "traversal",
        _TRAVERSAL,
        "Path traversal or file probe",
        gate="\x00|"
        + _words(
            "..",
            "etc/",
            "etc\\",
            "proc",
            "var",
            "://",
            ":\\",
            ".env",
            ".git",
            ".htaccess",
            ".htpasswd",
            ".svn",
            ".hg",
            ".bzr",
            ".aws",
            ".ssh",
            ".docker",
            ".kube",
            ".npmrc",
            ".bash_history",
            ".ds_store",
            "wp-config",
            "web.config",
            "boot.ini",
            "win.ini",
            "id_rsa",
            "id_ed25519",
            "phpinfo",
            "server-status",
            "config.php",
        ),
    ),
    Rule(
        "sqli",
        _SQLI,
        "SQL injection",
        gate="['\"`;()=<>@]|"
        + _words(
            "union",
            "select",
            "waitfor",
            "outfile",
            "dumpfile",
            "information_schema",
            "pg_catalog",
            "pg_shadow",
            "sysobjects",
            "syscolumns",
            "sys.tables",
            "sqlite_master",
            "mysql.user",
            "all_tables",
            "user_tables",
            "msysobjects",
            "order by",
            "case when",
            "true",
            "false",
        ),
    ),
    Rule(
        "xss",
        _XSS,
        "Cross-site scripting",
        gate="<|t[\\s\\x00]*:|data ?:|\\{\\{|"
        + _words(
            "vbscript",
            "behavior",
            "binding",
            "@import",
            "alert",
            "prompt",
            "confirm",
            "eval",
            "settimeout",
            "setinterval",
            "execscript",
            "expression",
            "fromcharcode",
            "appendchild",
            "createelement",
            "document",
            "window",
            "innerhtml",
            "srcdoc",
            "formaction",
            "fetch",
            "import",
        ),
    ),
    Rule(
        "cmdi",
        _CMDI,
        "Command injection",
        gate="[;&|\n`$]|" + _words("bin/", "/dev/", "/etc/", "://", "cmd", "powershell", " -"),
    ),
    Rule("crlf", _CRLF, "CRLF or header injection", gate="[\r\n\u560a\u560d]"),
)

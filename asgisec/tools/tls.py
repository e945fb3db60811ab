"""TLS checks: the certificate (chain, host name, expiry read from DER) and old protocols.

Every probe is one handshake with a bounded timeout. A probe that the *local* OpenSSL cannot
make (it refuses to offer TLS 1.0, or has no weak cipher left to offer) is ``inconclusive``:
only an answer from the server counts as a pass (case T1). The expiry is parsed from the
DER certificate with ``cryptography``, so it is known even when the chain does not verify
(``getpeercert()`` returns ``{}`` then; case T2).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import warnings
from datetime import UTC, datetime

import msgspec

from .catalog import result
from .model import Result

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "WEAK_CIPHERS",
    "CertificateInfo",
    "ProtocolProbe",
    "inspect_certificate",
    "modern_handshake",
    "probe_protocol",
    "probe_weak_ciphers",
    "tls_findings",
]

EXPIRY_WARNING_DAYS = 30  # the guide's alert threshold: "SSL certificate expiry (<30 days)"
# What testssl.sh calls NULL/anonymous/export/LOW/3DES/RC4 ciphers; @SECLEVEL=0 lets the local
# OpenSSL offer them at all. TLS 1.3 suites cannot be weakened, so the probe stops at 1.2.
WEAK_CIPHERS = "NULL:eNULL:aNULL:EXPORT:LOW:DES:3DES:RC4:MD5:@SECLEVEL=0"
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"  # what an old client offers: lets TLS 1.0/1.1 be tried

# Alerts that mean the *server* refused what was offered (RFC 8446 §6.2 / RFC 5246 §7.2).
_SERVER_REFUSALS = frozenset(
    {
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "TLSV1_ALERT_INSUFFICIENT_SECURITY",
        "WRONG_VERSION_NUMBER",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE_SERVER",
    }
)
# Errors raised by the local library before the server had a say.
_CLIENT_LIMITS = frozenset(
    {
        "NO_CIPHERS_AVAILABLE",
        "NO_PROTOCOLS_AVAILABLE",
        "NO_SUITABLE_KEY_SHARE",
        "LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED",
        "UNSAFE_LEGACY_RENEGOTIATION_DISABLED",
    }
)

# Some servers (asyncio's TLS, used by uvicorn) hang up on a ClientHello they will not serve
# instead of sending an alert. That is a refusal only if a modern handshake with the same
# server works (see protocol_results); otherwise nothing is known.
_HANG_UPS = frozenset({"UNEXPECTED_EOF_WHILE_READING", "EOF_IN_VIOLATION_OF_PROTOCOL"})

_HOSTNAME_MISMATCH = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH
_CERT_HAS_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED


class CertificateInfo(msgspec.Struct, kw_only=True):
    verified: bool = False
    error: str | None = None  # why verification failed
    hostname_ok: bool | None = None  # None: unknown (the chain failed first)
    expired: bool | None = None
    not_after: datetime | None = None
    days_left: int | None = None
    reachable: bool = True


class ProtocolProbe(msgspec.Struct, kw_only=True):
    outcome: str  # "accepted", "refused", "closed" (hung up, no alert) or "inconclusive"
    detail: str = ""


def _connect(host: str, port: int, context: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def inspect_certificate(
    host: str,
    port: int,
    *,
    cafile: str | None = None,
    timeout: float = 10.0,
    now: datetime | None = None,
) -> CertificateInfo:
    """Verify the chain and host name, then read the expiry from the DER certificate."""
    info = CertificateInfo()
    verifying = ssl.create_default_context(cafile=cafile)
    try:
        with _connect(host, port, verifying, timeout):
            info.verified = True
            info.hostname_ok = True
    except ssl.SSLCertVerificationError as exc:
        info.error = exc.verify_message or str(exc)
        if exc.verify_code in _HOSTNAME_MISMATCH:
            info.hostname_ok = False
        if exc.verify_code == _CERT_HAS_EXPIRED:
            info.expired = True
    except ssl.SSLError as exc:
        info.error = str(exc) or type(exc).__name__
    except OSError as exc:
        info.error = str(exc) or type(exc).__name__
        info.reachable = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        lenient.check_hostname = False
        lenient.verify_mode = ssl.CERT_NONE
        with contextlib.suppress(ValueError, ssl.SSLError):  # read old servers' certificates too
            lenient.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            lenient.set_ciphers(LEGACY_CIPHERS)
    try:
        with _connect(host, port, lenient, timeout) as tls:
            der = tls.getpeercert(binary_form=True)
    except (ssl.SSLError, OSError):
        return info
    info.reachable = True  # the verifying handshake may fail where a lenient one succeeds
    if der:
        from cryptography import x509  # noqa: PLC0415 - the `tools` extra

        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
        moment = now or datetime.now(UTC)
        info.not_after = not_after
        info.days_left = (not_after - moment).days
        info.expired = not_after <= moment
    return info


def _probe(
    host: str,
    port: int,
    *,
    version: ssl.TLSVersion | None,
    ciphers: str | None,
    timeout: float,
) -> ProtocolProbe:
    with warnings.catch_warnings():
        # ssl.TLSVersion.TLSv1/TLSv1_1 and their options are deprecated: probing them is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            if version is not None:
                context.minimum_version = version
                context.maximum_version = version
            else:
                context.maximum_version = ssl.TLSVersion.TLSv1_2
            if ciphers is not None:  # None: the library's own default list
                context.set_ciphers(ciphers)
        except (ValueError, ssl.SSLError) as exc:
            return ProtocolProbe(outcome="inconclusive", detail=f"local OpenSSL: {exc}")
        try:
            with _connect(host, port, context, timeout) as tls:
                return ProtocolProbe(
                    outcome="accepted", detail=f"{tls.version()} with {(tls.cipher() or ('?',))[0]}"
                )
        except ssl.SSLError as exc:
            reason = exc.reason or ""
            if reason in _CLIENT_LIMITS:
                return ProtocolProbe(
                    outcome="inconclusive", detail=f"the local OpenSSL cannot offer it ({reason})"
                )
            if reason in _SERVER_REFUSALS:
                return ProtocolProbe(outcome="refused", detail=f"server answered {reason}")
            if reason in _HANG_UPS:
                return ProtocolProbe(outcome="closed", detail="server closed the handshake")
            detail = f"handshake failed: {reason or exc}"
            return ProtocolProbe(outcome="inconclusive", detail=detail)
        except (ConnectionResetError, ssl.SSLEOFError):
            return ProtocolProbe(outcome="closed", detail="server closed the handshake")
        except OSError as exc:
            return ProtocolProbe(outcome="inconclusive", detail=f"connection failed: {exc}")


def probe_protocol(
    host: str,
    port: int,
    version: ssl.TLSVersion,
    *,
    ciphers: str | None = LEGACY_CIPHERS,
    timeout: float = 10.0,
) -> ProtocolProbe:
    """Offer exactly ``version``: accepted, refused by the server, or inconclusive."""
    return _probe(host, port, version=version, ciphers=ciphers, timeout=timeout)


def probe_weak_ciphers(
    host: str, port: int, *, ciphers: str = WEAK_CIPHERS, timeout: float = 10.0
) -> ProtocolProbe:
    """Offer only weak suites (up to TLS 1.2): accepted, refused, or inconclusive."""
    return _probe(host, port, version=None, ciphers=ciphers, timeout=timeout)


def tls_findings(
    host: str, port: int, *, cafile: str | None = None, timeout: float = 10.0
) -> list[Result]:
    """Every TLS check against ``host:port``."""
    info = inspect_certificate(host, port, cafile=cafile, timeout=timeout)
    return certificate_results(info) + protocol_results(host, port, timeout=timeout)


def certificate_results(info: CertificateInfo) -> list[Result]:
    out = []
    if info.not_after is None:
        why = "no certificate could be read" + (f": {info.error}" if info.error else "")
        out.append(result("tls.cert-expired", "inconclusive", why))
        out.append(result("tls.cert-expiring", "inconclusive", why))
    else:
        when = f"expires {info.not_after:%Y-%m-%d} ({info.days_left} days)"
        out.append(result("tls.cert-expired", "fail" if info.expired else "pass", when))
        soon = not info.expired and (info.days_left or 0) < EXPIRY_WARNING_DAYS
        out.append(result("tls.cert-expiring", "fail" if soon else "pass", when))
    if info.hostname_ok is None:
        out.append(result("tls.cert-hostname", "inconclusive", "the chain did not verify first"))
    else:
        out.append(
            result("tls.cert-hostname", "pass" if info.hostname_ok else "fail", info.error or "")
        )
    untrusted = not info.verified and info.hostname_ok is not False and info.expired is not True
    if not info.reachable:
        out.append(result("tls.cert-untrusted", "inconclusive", info.error or "no handshake"))
    else:
        out.append(result("tls.cert-untrusted", "fail" if untrusted else "pass", info.error or ""))
    return out


def modern_handshake(host: str, port: int, *, timeout: float = 10.0) -> bool:
    """Does a default, modern client complete a handshake (certificate not verified)?"""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with _connect(host, port, context, timeout):
            return True
    except (ssl.SSLError, OSError):
        return False


def protocol_results(host: str, port: int, *, timeout: float = 10.0) -> list[Result]:
    baseline = modern_handshake(host, port, timeout=timeout)
    out = []
    for check_id, version in (
        ("tls.protocol-tls1.0", ssl.TLSVersion.TLSv1),
        ("tls.protocol-tls1.1", ssl.TLSVersion.TLSv1_1),
    ):
        probe = probe_protocol(host, port, version, timeout=timeout)
        out.append(_from_probe(check_id, probe, baseline))
    weak = probe_weak_ciphers(host, port, timeout=timeout)
    out.append(_from_probe("tls.weak-ciphers", weak, baseline))
    return out


def _from_probe(check_id: str, probe: ProtocolProbe, baseline: bool) -> Result:
    if probe.outcome == "closed":
        if baseline:
            detail = f"{probe.detail}, while a modern handshake succeeds"
            return result(check_id, "pass", detail)
        return result(check_id, "inconclusive", f"{probe.detail}, and so does a modern one")
    status = {"accepted": "fail", "refused": "pass"}.get(probe.outcome, "inconclusive")
    return result(check_id, status, probe.detail)  # type: ignore[arg-type]

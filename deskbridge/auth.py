"""Who may call: signature checks on the raw body, in constant time.

- Jira admin webhooks: ``X-Hub-Signature: sha256=<hex HMAC-SHA256(body)>``.
- ServiceNow and /api/provision: Standard Webhooks (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature``), five minutes' tolerance.
- Syskit Point events: ``Signature`` = base64 HMAC-SHA256(body), ``Algorithm``.

One small verifier per scheme (:class:`HubSignature`, :class:`StandardWebhook`,
:class:`PointSignature`), built with every active secret (two during a
rotation): ``verify(body, headers)`` accepts a signature made with any of them,
returns the delivery id the scheme carries (None when it has none) and raises
:class:`SignatureError` for everything else. ``header`` names the header whose
presence says the caller signed at all. Nothing here parses the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # the verifiers' common shape, for type checkers (nothing to build at run time)
    from typing import Protocol

    class Verifier(Protocol):
        header: ClassVar[str]

        def verify(self, body: bytes, headers: Mapping[str, str]) -> str | None: ...


class SignatureError(Exception):
    """The caller's signature is missing, malformed, stale or wrong."""


def has_header(headers: Mapping[str, str], name: str) -> bool:
    lowered = name.lower()
    return any(key.lower() == lowered for key in headers)


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return ""


class HubSignature:
    """Jira admin webhooks: ``X-Hub-Signature: sha256=<hex HMAC-SHA256(body)>``. No delivery id."""

    __slots__ = ("secrets",)
    header: ClassVar[str] = "X-Hub-Signature"

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = secrets

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        signature = _header(headers, self.header).strip()
        if not signature:
            raise SignatureError("X-Hub-Signature header is missing")
        scheme, _, digest = signature.partition("=")
        if scheme.lower() != "sha256" or not digest:
            raise SignatureError("X-Hub-Signature must be sha256=<hex>")
        matched = False
        for secret in self.secrets:
            expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
            matched |= hmac.compare_digest(expected, digest.lower().encode("ascii", "replace").decode())
        if not matched:
            raise SignatureError("X-Hub-Signature does not match")


STANDARD_WEBHOOK_TOLERANCE_SECONDS = 300
_MAX_WEBHOOK_ID = 200
_MAX_SIGNATURES = 8
_BASE64 = re.compile(r"[A-Za-z0-9+/]{4,}={0,2}")


def _standard_signatures(header: str) -> str:
    """The ``v1,<base64>`` entries of a webhook-signature header, space-separated; others are left out."""
    entries = header.split()
    if len(entries) > _MAX_SIGNATURES:
        raise SignatureError(f"webhook-signature holds more than {_MAX_SIGNATURES} signatures")
    kept = []
    for entry in entries:
        version, _, signature = entry.partition(",")
        if version == "v1" and _BASE64.fullmatch(signature) and len(signature) % 4 == 0:
            kept.append(entry)
    if not kept:
        raise SignatureError("webhook-signature must hold 'v1,<base64 HMAC-SHA256>' (space-separated for several)")
    return " ".join(kept)


def _check_timestamp(value: str, now: float) -> None:
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise SignatureError("webhook-timestamp must be whole seconds since 1970 (Unix time)")
    skew = int(value) - now
    if skew < -STANDARD_WEBHOOK_TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes old")
    if skew > STANDARD_WEBHOOK_TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes in the future")


class StandardWebhook:
    """ServiceNow and /api/provision: Standard Webhooks; the delivery id is the ``webhook-id``.

    ``now`` (Unix seconds) replaces the clock for the timestamp check (tests).
    """

    __slots__ = ("secrets", "now")
    header: ClassVar[str] = "webhook-signature"

    def __init__(self, secrets: Sequence[str], now: float | None = None) -> None:
        self.secrets = secrets
        self.now = now

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        return _verify_standard_webhook(body, headers, self.secrets, self.now)


def _verify_standard_webhook(body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: float | None) -> str:
    """Check a Standard Webhooks signature; return the ``webhook-id`` for replay checks.

    The headers are checked here first, so the caller learns which one is wrong;
    the signature itself is checked by the ``standardwebhooks`` package
    (``hmac.compare_digest``), against each secret in turn.
    """
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    wanted = {
        "webhook-id": _header(headers, "webhook-id").strip(),
        "webhook-timestamp": _header(headers, "webhook-timestamp").strip(),
        "webhook-signature": _header(headers, "webhook-signature").strip(),
    }
    missing = [name for name, value in wanted.items() if not value]
    if missing:
        raise SignatureError("missing header(s): " + ", ".join(missing))
    if len(wanted["webhook-id"]) > _MAX_WEBHOOK_ID or not wanted["webhook-id"].isprintable():
        raise SignatureError(f"webhook-id must be at most {_MAX_WEBHOOK_ID} printable characters")
    _check_timestamp(wanted["webhook-timestamp"], time.time() if now is None else now)
    wanted["webhook-signature"] = _standard_signatures(wanted["webhook-signature"])
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("the body is not UTF-8 text, so its signature cannot be checked") from None
    unreadable = 0
    for secret in secrets:
        try:
            verifier = Webhook(secret)
        except Exception:  # not a whsec_<base64> secret: the vault holds something else
            unreadable += 1
            continue
        try:
            verifier.verify(body, wanted, json_parse=False)
        except WebhookVerificationError:
            continue
        return wanted["webhook-id"]
    if secrets and unreadable == len(secrets):
        raise SignatureError("webhook-signature could not be checked (the signing secret is not whsec_<base64>)")
    raise SignatureError("webhook-signature does not match")


def sign_standard_webhook(
    body: bytes, secret: str | Sequence[str], webhook_id: str, timestamp: int
) -> dict[str, str]:
    """The three headers a Standard Webhooks sender adds: the bridge's outcome callbacks, and the tests, the
    demo and ServiceNow's script as senders. Several secrets (two during a rotation) give one signature each,
    space-separated as the spec allows."""
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    moment, text = datetime.fromtimestamp(timestamp, UTC), body.decode("utf-8")
    secrets = [secret] if isinstance(secret, str) else secret
    signatures = " ".join(Webhook(one).sign(webhook_id, moment, text) for one in secrets)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}


EVENT_SIGNATURE_ALGORITHMS = frozenset({"hmacsha256", "hmac-sha256", "sha256", "hs256"})


class PointSignature:
    """Syskit Point events: ``Signature`` = base64 HMAC-SHA256(body), with ``Algorithm``. No delivery id
    (an event's idempotencyKey is in its body)."""

    __slots__ = ("keys",)
    header: ClassVar[str] = "Signature"

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = keys

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        signature = _header(headers, self.header).strip()
        algorithm = _header(headers, "Algorithm").strip()
        if not signature:
            raise SignatureError("Signature header is missing")
        if not algorithm:
            raise SignatureError("Algorithm header is missing")
        if algorithm.lower() not in EVENT_SIGNATURE_ALGORITHMS:
            raise SignatureError(f"Algorithm {algorithm[:40]!r} is not supported (HMACSHA256 is)")
        matched = False
        for key in self.keys:
            expected = base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest())
            matched |= hmac.compare_digest(expected, signature.encode("ascii", "replace"))
        if not matched:
            raise SignatureError("Signature does not match")


def sign_point_event(body: bytes, key: str) -> str:
    """The Signature header Syskit Point would send (for the simulator and tests)."""
    return base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def sign_hub(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()

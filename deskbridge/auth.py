"""Who may call: signature checks on the raw body, in constant time.

- Jira admin webhooks: ``X-Hub-Signature: sha256=<hex HMAC-SHA256(body)>``.
- ServiceNow and /api/provision: Standard Webhooks (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature``), five minutes' tolerance.
- Syskit Point events: ``Signature`` = base64 HMAC-SHA256(body), ``Algorithm``.

Each check takes every active secret (two during a rotation) and accepts a
signature made with any of them. Nothing here parses the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence


class SignatureError(Exception):
    """The caller's signature is missing, malformed, stale or wrong."""


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return ""


def verify_hub_signature(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    signature = _header(headers, "X-Hub-Signature").strip()
    if not signature:
        raise SignatureError("X-Hub-Signature header is missing")
    scheme, _, digest = signature.partition("=")
    if scheme.lower() != "sha256" or not digest:
        raise SignatureError("X-Hub-Signature must be sha256=<hex>")
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(expected, digest.lower().encode("ascii", "replace").decode())
    if not matched:
        raise SignatureError("X-Hub-Signature does not match")


STANDARD_WEBHOOK_TOLERANCE_SECONDS = 300


def verify_standard_webhook(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> str:
    """Check a Standard Webhooks signature; return the ``webhook-id`` for replay checks."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    wanted = {
        "webhook-id": _header(headers, "webhook-id"),
        "webhook-timestamp": _header(headers, "webhook-timestamp"),
        "webhook-signature": _header(headers, "webhook-signature"),
    }
    missing = [name for name, value in wanted.items() if not value]
    if missing:
        raise SignatureError("missing header(s): " + ", ".join(missing))
    if len(wanted["webhook-id"]) > 200:
        raise SignatureError("webhook-id is too long")
    problem = "webhook-signature does not match"
    for secret in secrets:
        try:
            Webhook(secret).verify(body, wanted, json_parse=False)
            return wanted["webhook-id"]
        except WebhookVerificationError as exc:
            message = str(exc)
            if "timestamp" in message.lower():
                problem = "webhook-timestamp is missing, malformed or more than 5 minutes away"
        except Exception:  # a malformed secret or header the package cannot decode
            problem = "webhook-signature could not be checked"
    raise SignatureError(problem)


POINT_ALGORITHMS = frozenset({"hmacsha256", "hmac-sha256", "sha256", "hs256"})


def verify_point_signature(body: bytes, headers: Mapping[str, str], keys: Sequence[str]) -> None:
    signature = _header(headers, "Signature").strip()
    algorithm = _header(headers, "Algorithm").strip()
    if not signature:
        raise SignatureError("Signature header is missing")
    if algorithm and algorithm.lower() not in POINT_ALGORITHMS:
        raise SignatureError(f"Algorithm {algorithm[:40]!r} is not supported (HMACSHA256 is)")
    matched = False
    for key in keys:
        expected = base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest())
        matched |= hmac.compare_digest(expected, signature.encode("ascii", "replace"))
    if not matched:
        raise SignatureError("Signature does not match")


def sign_point_event(body: bytes, key: str) -> str:
    """The Signature header Syskit Point would send (for the simulator and tests)."""
    return base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def sign_hub(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()

"""Outbound: the outcome POSTed to an /api/provision caller's ``ticket.callbackUrl``.

One ``requests.Session`` per worker (kept-alive connections), explicit
timeouts, no redirects: a signed outcome goes to the URL the caller gave,
nowhere else. Every attempt for one update carries the same ``webhook-id``,
so the receiver can drop copies (at-least-once delivery).
"""

from __future__ import annotations

import requests

from deskbridge.causes import diagnose
from deskbridge.errors import CallbackError, transient_status

__all__ = ["CallbackClient", "CallbackError"]


class CallbackClient:
    def __init__(self, session: requests.Session | None = None, timeout: tuple[float, float] = (3.05, 10.0)) -> None:
        self._session = session or requests.Session()
        self._timeout = timeout

    def post(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        try:
            response = self._session.post(
                url, data=data, headers=headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            cause = diagnose(exc, service="the desk's callback", url=url)
            reason = cause.brief if cause else type(exc).__name__
            raise CallbackError(f"callback unreachable: {reason}", transient=True, unreachable=cause) from None
        status = response.status_code
        if not 200 <= status < 300:
            raise CallbackError(f"callback answered {status}", transient=transient_status(status), http_status=status)

"""Outbound: the outcome POSTed to an /api/provision caller's ``ticket.callbackUrl``.

One ``requests.Session`` per worker (kept-alive connections), explicit
timeouts, no redirects: a signed outcome goes to the URL the caller gave,
nowhere else. Every attempt for one update carries the same ``webhook-id``,
so the receiver can drop copies (at-least-once delivery).
"""

from __future__ import annotations

import requests


class CallbackError(Exception):
    """The callback was not accepted. ``transient``: try again later."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.transient = status in (0, 408, 429) or status >= 500


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
            raise CallbackError(f"callback unreachable: {type(exc).__name__}", 0) from None
        if not 200 <= response.status_code < 300:
            raise CallbackError(f"callback answered {response.status_code}", response.status_code)

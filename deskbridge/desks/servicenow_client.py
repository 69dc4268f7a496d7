"""Outbound to ServiceNow: the outcome written to the requested item (work note and state), Table API.

Basic auth or an OAuth bearer token; one ``requests.Session`` per worker,
explicit timeouts. Every failure is a :class:`ServiceNowError`
(deskbridge.errors) saying whether it is ``transient`` and what ServiceNow
answered.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from deskbridge.causes import diagnose
from deskbridge.errors import ServiceNowError, transient_status
from deskbridge.model import SYS_ID_FORM

__all__ = ["ServiceNowClient", "ServiceNowError"]


def _error_detail(response: requests.Response) -> str:
    """ServiceNow's {"error": {"message", "detail"}}, shortened."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(error, dict):
        return ""
    return ": ".join(str(error[k]) for k in ("message", "detail") if error.get(k))[:300]


def _check_sys_id(sys_id: str) -> None:
    if not SYS_ID_FORM.fullmatch(sys_id):
        raise ServiceNowError("not a sys_id (32 lower-case hexadecimal characters): not sent", transient=False)


class ServiceNowClient:
    """Table API write-back, with basic auth or an OAuth bearer token."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str = "",
        password: str = "",
        token: str = "",
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._timeout = timeout
        self._headers = {"Accept": "application/json"}
        self._auth: tuple[str, str] | None = None
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        else:
            self._auth = (username, password)

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(
                method, self.base_url + path, headers=self._headers, auth=self._auth, timeout=self._timeout, **kwargs
            )
        except requests.RequestException as exc:
            cause = diagnose(exc, service="ServiceNow", url=self.base_url, setting="SERVICENOW_URL")
            reason = cause.brief if cause else type(exc).__name__
            raise ServiceNowError(f"ServiceNow unreachable: {reason}", transient=True, unreachable=cause) from None
        if response.status_code >= 400:
            status = response.status_code
            raise ServiceNowError(
                f"ServiceNow answered {status} to {method} {what}",
                transient=transient_status(status),
                http_status=status,
                detail=_error_detail(response),
            )
        return response

    def first_item(self) -> dict[str, Any] | None:
        """One requested item the user can read (doctor's probe), or None when none is visible."""
        params = {"sysparm_limit": "1", "sysparm_fields": "sys_id,number"}
        response = self._call("GET", "/api/now/table/sc_req_item", "sc_req_item", params=params)
        try:
            result = response.json().get("result")
        except (ValueError, AttributeError):
            raise ServiceNowError(
                "ServiceNow answered GET sc_req_item with something other than JSON", transient=True
            ) from None
        return result[0] if isinstance(result, list) and result and isinstance(result[0], dict) else None

    def update_item(self, sys_id: str, fields: dict[str, str]) -> None:
        # Percent-encoded whatever it holds (intake lets only 32 hex characters through): one path segment.
        _check_sys_id(sys_id)
        self._call("PATCH", f"/api/now/table/sc_req_item/{quote(sys_id, safe='')}", "sc_req_item", json=fields)

    def has_work_note(self, sys_id: str, marker: str) -> bool:
        """Whether a work note on the item carries the marker (its journal, read through the Table API)."""
        _check_sys_id(sys_id)  # it goes into an encoded query, where '^' would start another condition
        query = f"element_id={sys_id}^name=sc_req_item^element=work_notes^valueLIKE{marker}"
        params = {"sysparm_query": query, "sysparm_fields": "sys_id", "sysparm_limit": "1"}
        response = self._call("GET", "/api/now/table/sys_journal_field", "sys_journal_field", params=params)
        try:
            found = response.json().get("result")
        except (ValueError, AttributeError):
            raise ServiceNowError(
                "ServiceNow answered GET sys_journal_field with no JSON result", transient=True, http_status=200
            ) from None
        return isinstance(found, list) and len(found) > 0

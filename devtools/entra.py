"""Entra ID stand-in: OpenID configuration, the v2.0 token endpoint, and a managed identity endpoint.

Apps are registered with a client secret (which may be marked expired) or as
trusting the managed identity (federated credential). Tokens are opaque
strings that the other stand-ins check with :meth:`EntraStandIn.token_info`;
with ``claims_in_tokens`` they are shaped as Entra ID's are (header, claims,
signature: ``aud``, ``appid``, ``roles``), for code that reads its own token's
claims (doctor's Point.Admin warning). The signature is random, never checked.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from devtools.standin import Call, Reply, StandIn

VAULT_RESOURCE = "https://vault.azure.net"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"


@dataclass
class App:
    client_id: str
    secret: str = ""
    secret_expired: bool = False
    federated_subject: str = ""  # the managed identity's id trusted as a federated credential
    roles: set[str] = field(default_factory=set)  # app roles consented on the Syskit Point API


@dataclass(frozen=True)
class TokenInfo:
    client_id: str
    resource: str
    roles: frozenset[str]


class EntraStandIn(StandIn):
    name = "entra-id"

    def __init__(self, tenant_id: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id
        self.apps: dict[str, App] = {}
        self.resources: set[str] = {VAULT_RESOURCE}
        self.managed_identity_id = "mi-" + secrets.token_hex(8)
        self.identity_header = secrets.token_hex(16)
        self._tokens: dict[str, TokenInfo] = {}
        self._token_lock = threading.Lock()
        self.claims_in_tokens = False

    def register(self, client_id: str, secret: str = "", roles: set[str] | None = None) -> App:
        app = App(client_id, secret, roles=set(roles or ()))
        self.apps[client_id] = app
        return app

    def issue(self, client_id: str, resource: str, roles: frozenset[str] = frozenset()) -> str:
        token = "tok-" + secrets.token_urlsafe(24)
        if self.claims_in_tokens:
            claims = {"aud": resource, "appid": client_id, "tid": self.tenant_id, "roles": sorted(roles)}
            token = ".".join((_segment({"typ": "JWT", "alg": "RS256"}), _segment(claims), secrets.token_urlsafe(32)))
        with self._token_lock:
            self._tokens[token] = TokenInfo(client_id, resource, roles)
        return token

    def token_info(self, token: str) -> TokenInfo | None:
        with self._token_lock:
            return self._tokens.get(token)

    def revoke_all(self, resource: str | None = None) -> None:
        """Forget issued tokens (all, or those for one resource): their holders get 401s."""
        with self._token_lock:
            self._tokens = {t: i for t, i in self._tokens.items() if resource is not None and i.resource != resource}

    def token_requests(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.path.endswith("/oauth2/v2.0/token")]

    # -- HTTP ---------------------------------------------------------------
    def handle(self, call: Call) -> Reply:
        prefix = f"/{self.tenant_id}"
        if call.method == "GET" and call.path.endswith("/.well-known/openid-configuration"):
            if not call.path.startswith(prefix):
                return _error(400, "invalid_tenant", "AADSTS90002: Tenant not found.")
            base = f"{self.url}/{self.tenant_id}"
            return Reply(
                200,
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                },
            )
        if call.method == "POST" and call.path == f"{prefix}/oauth2/v2.0/token":
            return self._token(call.form())
        if call.method == "POST" and call.path.endswith("/oauth2/v2.0/token"):
            return _error(400, "invalid_request", "AADSTS90002: Tenant not found.")
        if call.path == "/msi/token":
            return self._managed_identity(call)
        return Reply(404, {"error": "not_found"})

    def _token(self, form: dict[str, str]) -> Reply:
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type", "AADSTS70003: only client_credentials here.")
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return _error(400, "unauthorized_client", "AADSTS700016: Application not found in the directory.")
        if "client_assertion" in form:
            if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                return _error(400, "invalid_request", "AADSTS50027: wrong client_assertion_type.")
            info = self.token_info(form["client_assertion"])
            if info is None or info.resource != EXCHANGE_AUDIENCE or info.client_id != app.federated_subject:
                return _error(401, "invalid_client", "AADSTS700213: No matching federated identity record found.")
        elif not app.secret or not secrets.compare_digest(form.get("client_secret", ""), app.secret):
            return _error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        elif app.secret_expired:
            return _error(401, "invalid_client", "AADSTS7000222: The provided client secret keys are expired.")
        scope = form.get("scope", "")
        resource = scope.removesuffix("/.default")
        if not scope.endswith("/.default") or resource not in self.resources:
            return _error(400, "invalid_scope", f"AADSTS500011: The resource principal named {resource} was not found.")
        roles = frozenset(app.roles) if resource != VAULT_RESOURCE else frozenset()
        token = self.issue(app.client_id, resource, roles)
        return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    def _managed_identity(self, call: Call) -> Reply:
        if call.headers.get("X-IDENTITY-HEADER", call.headers.get("x-identity-header")) != self.identity_header:
            return Reply(401, {"error": "missing or wrong X-IDENTITY-HEADER"})
        resource = (call.query.get("resource") or [""])[0].removesuffix("/.default")
        token = self.issue(self.managed_identity_id, resource)
        return Reply(
            200,
            {
                "access_token": token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": self.managed_identity_id,
            },
        )


def _error(status: int, code: str, description: str) -> Reply:
    return Reply(
        status,
        {
            "error": code,
            "error_description": description,
            "error_codes": [int(description[6 : description.index(":")]) if description.startswith("AADSTS") else 0],
        },
    )


def _segment(value: dict) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

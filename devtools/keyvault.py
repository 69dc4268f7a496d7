"""Key Vault stand-in: the 401 challenge, then secrets for a valid vault token."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from devtools.entra import VAULT_RESOURCE, EntraStandIn
from devtools.standin import Call, Reply, StandIn, bearer


@dataclass
class StoredSecret:
    value: str
    version: str
    expires_on: float | None = None  # epoch seconds


class KeyVaultStandIn(StandIn):
    name = "key-vault"

    def __init__(self, entra: EntraStandIn, **kwargs) -> None:
        super().__init__(**kwargs)
        self.entra = entra
        self.secrets: dict[str, StoredSecret] = {}

    def set_secret(self, name: str, value: str, expires_on: float | None = None) -> None:
        self.secrets[name] = StoredSecret(value, secrets.token_hex(16), expires_on)

    def reads(self, name: str | None = None) -> list[Call]:
        """Authorised secret reads (not the unauthenticated challenge round trip)."""
        return [
            c
            for c in self.calls
            if c.method == "GET"
            and c.path.startswith("/secrets/")
            and bearer(c)
            and (name is None or c.path.split("/")[2] == name)
        ]

    def handle(self, call: Call) -> Reply:
        token = bearer(call)
        if not token:
            authority = f"{self.entra.url}/{self.entra.tenant_id}"
            return Reply(
                401,
                {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}},
                {"WWW-Authenticate": f'Bearer authorization="{authority}", resource="{VAULT_RESOURCE}"'},
            )
        info = self.entra.token_info(token)
        if info is None or info.resource != VAULT_RESOURCE:
            return Reply(401, {"error": {"code": "Unauthorized", "message": "AKV10032: Invalid issuer or audience."}})
        parts = call.path.strip("/").split("/")
        if call.method != "GET" or len(parts) < 2 or parts[0] != "secrets":
            return Reply(404, {"error": {"code": "NotFound", "message": "no such route"}})
        stored = self.secrets.get(parts[1])
        if stored is None:
            return Reply(
                404,
                {
                    "error": {
                        "code": "SecretNotFound",
                        "message": f"A secret with (name/id) {parts[1]} was not found in this key vault.",
                    }
                },
            )
        attributes = {
            "enabled": True,
            "created": int(time.time()) - 60,
            "updated": int(time.time()) - 60,
            "recoveryLevel": "Recoverable+Purgeable",
        }
        if stored.expires_on is not None:
            attributes["exp"] = int(stored.expires_on)
        return Reply(
            200,
            {"value": stored.value, "id": f"{self.url}/secrets/{parts[1]}/{stored.version}", "attributes": attributes},
        )

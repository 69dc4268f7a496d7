"""Certificates for the HTTPS stand-ins: a throw-away CA (trustme) and a 127.0.0.1 certificate."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LocalTLS:
    ca_bundle: Path  # give this to REQUESTS_CA_BUNDLE
    server_context: ssl.SSLContext


def local_tls(directory: Path) -> LocalTLS:
    import trustme

    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    directory.mkdir(parents=True, exist_ok=True)
    bundle = directory / "standin-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return LocalTLS(bundle, context)

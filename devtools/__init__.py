"""Local stand-ins for the services the bridge talks to (not deployed: see .funcignore).

Entra ID, Key Vault, Syskit Point, Jira and ServiceNow, each a small HTTPS
server on 127.0.0.1 that the real SDKs talk to over real sockets, plus
Azurite for storage. Used by the tests, the demo and the local run.
"""

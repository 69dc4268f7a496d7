"""`python -m deskbridge webhooks register|list|delete` against the Syskit Point simulator."""

from __future__ import annotations

import json
import uuid

from deskbridge.cli import main
from devtools.stack import BRIDGE_APP_ID


def events_url() -> tuple[str, str]:
    """The bridge's events URL with a function key, as an operator copies it from the portal."""
    key = "fk-" + uuid.uuid4().hex
    return f"https://bridge-contoso.azurewebsites.net/api/point/events?code={key}", key


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_register_list_and_delete_never_print_the_function_key(bridge, capsys):
    point = bridge.stack.point
    url, key = events_url()
    code, out, err = run(capsys, "webhooks", "register", url)
    assert code == 0, err
    assert out.strip() == ("Registered https://bridge-contoso.azurewebsites.net/api/point/events?code=*** "
                           "for *.")
    assert point.webhooks == {url: ["*"]}  # Syskit Point got the whole URL, key included
    [call] = point.calls_to("POST", "/v1.0/webhooks/endpoints")
    assert call.json() == {"endpoint": url, "types": ["*"]}

    code, out, err = run(capsys, "webhooks", "list")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["ENDPOINT", "TYPES"]
    assert out.splitlines()[1].startswith("https://bridge-contoso.azurewebsites.net/api/point/events")

    code, out, err = run(capsys, "webhooks", "list", "--json")
    assert code == 0 and json.loads(out) == [
        {"endpoint": "https://bridge-contoso.azurewebsites.net/api/point/events?code=***", "types": "*"}]

    code, out, err = run(capsys, "webhooks", "delete", url)
    assert (code, point.webhooks) == (0, {})
    assert out.strip() == "Deleted https://bridge-contoso.azurewebsites.net/api/point/events?code=***."

    code, out, err = run(capsys, "webhooks", "delete", url)
    assert code == 1 and "no webhook is registered" in err
    printed = out + err
    assert key not in printed


def test_register_for_some_event_types_only(bridge, capsys):
    url, key = events_url()
    code, out, err = run(capsys, "webhooks", "register", url, "--types", "ProvisioningCompleted,ProvisioningFailed",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["types"] == ["ProvisioningCompleted", "ProvisioningFailed"]
    assert bridge.stack.point.webhooks[url] == ["ProvisioningCompleted", "ProvisioningFailed"]
    assert key not in out + err


def test_without_point_admin_the_403_says_so(bridge, capsys):
    bridge.stack.entra.apps[BRIDGE_APP_ID].roles = {"Point.Provisioning"}
    url, key = events_url()
    code, out, err = run(capsys, "webhooks", "register", url)
    assert code == 1
    assert err.strip() == ("error: Syskit Point refused (403): webhook registration needs the Point.Admin application "
                           "permission on the integration app, with admin consent")
    assert bridge.stack.point.webhooks == {}
    assert key not in out + err
    assert run(capsys, "webhooks", "list")[0] == 1


def test_register_needs_a_url(bridge, capsys):
    code, out, err = run(capsys, "webhooks", "register")
    assert code == 1 and "needs the endpoint URL" in err
    assert bridge.stack.point.calls == []

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
    assert err.splitlines()[0] == ("error: Syskit Point refused (403): webhook registration needs the Point.Admin "
                                   "application permission on the integration app, with admin consent")
    assert err.splitlines()[1].startswith("  -> in Entra ID, app POINT_CLIENT_ID > API permissions: add Point.Admin")
    assert bridge.stack.point.webhooks == {}
    assert key not in out + err
    assert run(capsys, "webhooks", "list")[0] == 1


def test_register_needs_a_url(bridge, capsys):
    code, out, err = run(capsys, "webhooks", "register")
    assert code == 2 and out == ""
    assert err.splitlines()[-2:] == ["error: the following arguments are required: URL",
                                     "  -> python -m deskbridge webhooks register --help says what it takes"]
    assert bridge.stack.point.calls == []


def test_register_without_a_url_says_so_before_any_setting(capsys, tmp_path, monkeypatch):
    """Nothing is configured at all: the missing URL is still what is named first (and alone)."""
    from deskbridge import runtime

    monkeypatch.chdir(tmp_path)
    runtime.reset({})
    for argv in (["webhooks", "register"], ["webhooks", "delete"]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and "required: URL" in err and "setting" not in err
        code, out, err = run(capsys, *argv, "--json")
        assert code == 2 and err == ""
        assert json.loads(out)["problems"] == [{"message": "the following arguments are required: URL",
                                                "hint": f"python -m deskbridge {' '.join(argv)} --help says what it "
                                                        "takes"}]

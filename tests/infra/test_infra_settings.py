"""The Bicep app settings and deskbridge.settings.SETTINGS agree.

Every setting the bridge reads is set by the template, or is optional with
a default; every app setting the template sets is read by the bridge or is
one of Azure's own (storage by identity, Application Insights, the identity
DefaultAzureCredential uses).
"""

from __future__ import annotations

import json
import re

from infra_helpers import INFRA, ROOT, object_keys, parsed, resource

from deskbridge.settings import SETTINGS

PLATFORM_SETTINGS = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "AZURE_CLIENT_ID",
}
PLATFORM_PREFIXES = ("AzureWebJobsStorage__",)
# Flex Consumption takes the runtime from functionAppConfig and refuses these.
FORBIDDEN = {
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "WEBSITE_RUN_FROM_PACKAGE",
    "AzureWebJobsStorage",
}
SPECS = {spec.name: spec for spec in SETTINGS}
# Settings a trigger binding names as %SETTING%: the host resolves them, so they are never left empty.
BINDING_SETTINGS = set(re.findall(r"%([A-Z_]+)%", (ROOT / "function_app.py").read_text(encoding="utf-8")))


def _bridge_settings(bicep) -> dict:
    main = bicep["main"]
    return main["variables"]["bridgeSettings"]["value"]


def _all_app_settings(bicep) -> set[str]:
    main = bicep["main"]
    function = bicep["app/function"]
    assert bicep["main"]["modules"]["functionApp"]["config"]["params"]["bridgeSettings"] == "bridgeSettings"
    bridge = object_keys(_bridge_settings(bicep), main["variables"])
    platform = object_keys(resource(function, "appSettings")["properties"], {})
    return bridge | platform


def test_every_setting_the_bridge_reads_is_set_or_optional_with_a_default():
    bicep = parsed()
    set_in_bicep = _all_app_settings(bicep)
    missing = [
        spec.name for spec in SETTINGS if spec.name not in set_in_bicep and (spec.required or spec.default is None)
    ]
    assert missing == []


def test_every_app_setting_the_bicep_sets_is_read_by_the_bridge():
    bicep = parsed()
    unknown = sorted(
        name
        for name in _all_app_settings(bicep)
        if name not in SPECS and name not in PLATFORM_SETTINGS and not name.startswith(PLATFORM_PREFIXES)
    )
    assert unknown == []
    assert not FORBIDDEN & _all_app_settings(bicep)


def test_every_setting_is_a_parameter():
    bicep = parsed()
    """Each non-secret setting comes from its own parameter, whose default is the bridge's own."""
    main = bicep["main"]
    params = main["parameters"]
    literal = _bridge_settings(bicep)["function"]["parameters"]["arg_2"]
    azd = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    computed = {"KEY_VAULT_URL", "POINT_AUTH_MODE", "POINT_TENANT_ID"}
    for name, value in literal.items():
        spec = SPECS[name]
        if name in computed:
            continue
        assert isinstance(value, str) and value in params, f"{name} should come straight from a parameter"
        default = params[value].get("default")
        if spec.required:
            assert default is None, f"{name} is required: its parameter needs no default"
            assert {"type": "min_length", "argument": 1} in params[value]["decorators"], name
        elif name.startswith("BRIDGE_") and name.endswith(("_TABLE", "_QUEUE")) or name in BINDING_SETTINGS:
            # infra creates these, or a trigger binding reads them as %NAME%: the parameter carries the real value
            assert default == spec.default, f"{name}: {default!r} != {spec.default!r}"
        else:
            assert default == "", f"{name}: empty means the bridge's default; got {default!r}"
            assert azd[value]["value"] == f"${{{name}}}", f"{name}: azd env var"


def test_secret_name_settings_are_set_only_for_features_that_are_on():
    bicep = parsed()
    main = bicep["main"]
    secret_settings = {name for name in SPECS if name.endswith("_SECRET_NAME")}
    union = main["variables"]["secretNameSettings"]["value"]["function"]["parameters"]
    conditional = set()
    for argument in union.values():
        operands = argument["operator"]["operands"]
        assert operands["true_value"] == {}
        assert operands["condition"]["function"]["type"] == "empty"
        conditional |= set(operands["false_value"])
    assert conditional == secret_settings
    literal = _bridge_settings(bicep)["function"]["parameters"]["arg_2"]
    assert not secret_settings & set(literal)


def test_default_secret_names():
    source = (INFRA / "main.bicep").read_text(encoding="utf-8")
    assert re.search(r"param pointClientSecretName string = 'point-client-secret'", source)
    assert SPECS["POINT_CLIENT_SECRET_NAME"].default == "point-client-secret"

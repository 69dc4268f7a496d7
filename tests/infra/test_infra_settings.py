"""The Bicep app settings and deskbridge.settings.SETTINGS agree.

Every setting the bridge reads is set by the template, or is optional with
a default; every app setting the template sets is read by the bridge or is
one of Azure's own (storage by identity, Application Insights, the identity
DefaultAzureCredential uses).
"""

from __future__ import annotations

import json
import re
import sys

from bicep_eval import bicep_file
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


# ------------------------------------------------- one configuration path
# Every setting is changed with `azd env set NAME value` and `azd provision`:
# each is a main.bicep parameter that main.parameters.json fills from the azd
# environment value of the setting's own name. Only these are not:
NOT_FROM_AZD = {
    "KEY_VAULT_URL": "the vault the template creates (azd gets it back as the output KEY_VAULT_URL)",
    "AzureWebJobsStorage": "in Azure the identity-based AzureWebJobsStorage__* settings replace it",
}
# Parameters azd fills from its own values rather than from their SCREAMING_SNAKE_CASE name.
AZD_OWN_NAMES = {
    "environmentName": "AZURE_ENV_NAME",
    "location": "AZURE_LOCATION",
    "principalId": "AZURE_PRINCIPAL_ID",
    "principalType": "AZURE_PRINCIPAL_TYPE",
    "resourceGroupName": "AZURE_RESOURCE_GROUP",
    "keyVaultName": "AZURE_KEY_VAULT_NAME_OVERRIDE",
}
# The production knobs issue 23 names, each with the azd value that sets it.
PRODUCTION_KNOBS = {
    "storageSkuName": "STORAGE_SKU_NAME",
    "logRetentionInDays": "LOG_RETENTION_IN_DAYS",
    "instanceMemoryMB": "INSTANCE_MEMORY_MB",
    "maximumInstanceCount": "MAXIMUM_INSTANCE_COUNT",
    "httpPerInstanceConcurrency": "HTTP_PER_INSTANCE_CONCURRENCY",
    "secretsExpireOn": "SECRETS_EXPIRE_ON",
}
AZD_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=[^}]*)?\}")
IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


def _azd_values() -> dict[str, str]:
    """main.parameters.json: parameter -> the one azd value it is filled from."""
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    filled = {}
    for parameter, entry in parameters.items():
        names = AZD_REFERENCE.findall(entry["value"])
        assert len(names) == 1 and AZD_REFERENCE.fullmatch(entry["value"]), f"{parameter}: {entry['value']!r}"
        filled[parameter] = names[0]
    return filled


def _snake(parameter: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", parameter).upper()


def _camel(setting: str) -> str:
    first, *rest = setting.lower().split("_")
    return first + "".join(word.capitalize() for word in rest)


def _setting_sources() -> dict[str, set[str]]:
    """Each app setting main.bicep sets -> the parameters its value is computed from (through variables)."""
    main = bicep_file(INFRA / "main.bicep")
    sources: dict[str, set[str]] = {}

    def parameters_in(text: str, seen: set[str]) -> set[str]:
        found = set()
        for name in set(IDENTIFIER.findall(re.sub(r"'(?:[^'\\]|\\.)*'", "''", text))) - seen:
            seen.add(name)
            if name in main.params:
                found.add(name)
            elif name in main.variables:
                found |= parameters_in(main.value_node(main.variables[name]).text.decode(), seen)
        return found

    for variable in ("bridgeSettings", "secretNameSettings"):
        text = main.value_node(main.variables[variable]).text.decode()
        for setting, expression in re.findall(r"\b([A-Za-z][A-Za-z0-9_]*): ([^\n]+)", text):
            if setting in SPECS:
                sources.setdefault(setting, set()).update(parameters_in(expression, set()))
    return sources


def test_every_setting_the_bridge_reads_is_set_from_the_azd_value_of_its_own_name():
    filled = _azd_values()
    sources = _setting_sources()
    gaps = []
    for spec in SETTINGS:
        if spec.name in NOT_FROM_AZD:
            continue
        from_azd = {parameter for parameter, name in filled.items() if name == spec.name}
        if from_azd and from_azd & sources.get(spec.name, set()):
            continue
        parameter = _camel(spec.name)
        gaps.append(
            f"{spec.name}: add to infra/main.bicep `@description('{spec.name}: ...') param {parameter} string = ''` "
            f"and `{spec.name}: {parameter}` in bridgeSettings, and to infra/main.parameters.json "
            f'`"{parameter}": {{"value": "${{{spec.name}}}"}}`'
            + (
                " (a *_SECRET_NAME: set it in secretNameSettings instead, as POINT_WEBHOOK_KEY_SECRET_NAME is, "
                "with its @secure() value parameter, *_EXPIRES_ON parameter, secretsToWrite item and the outputs "
                "that clear them)"
                if spec.name.endswith("_SECRET_NAME")
                else ""
            )
        )
    assert gaps == [], "settings azd cannot set:\n" + "\n".join(gaps)


def test_every_parameter_of_main_bicep_is_filled_from_the_azd_environment():
    main = bicep_file(INFRA / "main.bicep")
    filled = _azd_values()
    missing = [
        f'"{parameter}": {{"value": "${{{AZD_OWN_NAMES.get(parameter, _snake(parameter))}}}"}}'
        for parameter in main.params
        if parameter not in filled
    ]
    assert missing == [], "add to infra/main.parameters.json:\n" + "\n".join(missing)
    misnamed = {
        parameter: (name, AZD_OWN_NAMES.get(parameter, _snake(parameter)))
        for parameter, name in filled.items()
        if name != AZD_OWN_NAMES.get(parameter, _snake(parameter))
    }
    assert misnamed == {}, "parameter: (azd value, the name it should have)"
    assert set(filled) <= set(main.params), set(filled) - set(main.params)


def test_the_production_knobs_and_the_storage_names_are_azd_values():
    filled = _azd_values()
    for parameter, name in PRODUCTION_KNOBS.items():
        assert filled[parameter] == name
    for setting in (
        "BRIDGE_LEDGER_TABLE",
        "BRIDGE_DELIVERIES_TABLE",
        "BRIDGE_RETRY_QUEUE",
        "BRIDGE_RETRY_POISON_QUEUE",
        "BRIDGE_DESK_QUEUE",
        "BRIDGE_DESK_POISON_QUEUE",
        "BRIDGE_RECONCILE_SCHEDULE",
    ):
        assert filled[_camel(setting)] == setting


def test_the_mapping_test_names_what_to_add_for_a_new_setting(monkeypatch):
    """A setting added to the table alone (as another branch may) fails with the lines to add."""
    import deskbridge.settings as settings_module

    extra = settings_module.SettingSpec("BRIDGE_EXAMPLE_LIMIT", "5", "an example")
    monkeypatch.setattr(sys.modules[__name__], "SETTINGS", (*SETTINGS, extra))
    monkeypatch.setitem(SPECS, extra.name, extra)
    try:
        test_every_setting_the_bridge_reads_is_set_from_the_azd_value_of_its_own_name()
    except AssertionError as failure:
        message = str(failure)
    else:
        raise AssertionError("a setting without a parameter passed")
    assert "param bridgeExampleLimit string = ''" in message
    assert "BRIDGE_EXAMPLE_LIMIT: bridgeExampleLimit" in message
    assert '"bridgeExampleLimit": {"value": "${BRIDGE_EXAMPLE_LIMIT}"}' in message

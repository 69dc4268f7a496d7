"""The Key Vault secrets main.bicep creates, computed from the template text.

The last part provisions twice through azd's own steps (azd_env.py): a value is
written by the one provision that got it, never again.

ARM checks the name of every child in a resource loop before it looks at
the loop's condition, so a secret child with an empty or invalid name fails
the whole deployment even when it would be skipped (Azure/bicep#10596).
These tests evaluate main.bicep's expressions (tests/infra/bicep_eval.py)
for the parameter values a user would give, hand the `secrets` module
parameter to app/keyvault.bicep, and check every child of its secret loop.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from azd_env import env_names, outputs_azd_reads_back, parameter_values, parameters_file, provision
from bicep_eval import JS_UNRESERVED, RFC3986_UNRESERVED, Evaluation, TemplateError, bicep_file
from hypothesis import given, settings
from hypothesis import strategies as st
from infra_helpers import INFRA

KEY_VAULT_SECRET_NAME = re.compile(r"[a-zA-Z0-9-]{1,127}")  # Key Vault's rule, ^...$
REQUIRED = {
    "environmentName": "deskbridge-test",
    "location": "westeurope",
    "pointUrl": "https://contoso.point.syskit.com",
    "pointApiAppId": "11111111-1111-1111-1111-111111111111",
    "pointClientId": "22222222-2222-2222-2222-222222222222",
}
# value parameter -> (secret-name parameter, default secret name, the setting that names it)
FEATURES = {
    "pointClientSecret": ("pointClientSecretName", "point-client-secret", "POINT_CLIENT_SECRET_NAME"),
    "pointWebhookKey": ("pointWebhookKeySecretName", "point-webhook-key", "POINT_WEBHOOK_KEY_SECRET_NAME"),
    "jiraWebhookSecret": ("jiraWebhookSecretName", "jira-webhook-secret", "JIRA_WEBHOOK_SECRET_NAME"),
    "jiraApiToken": ("jiraApiTokenSecretName", "jira-api-token", "JIRA_API_TOKEN_SECRET_NAME"),
    "servicenowPassword": ("servicenowPasswordSecretName", "servicenow-password", "SERVICENOW_PASSWORD_SECRET_NAME"),
    "servicenowToken": ("servicenowTokenSecretName", "servicenow-token", "SERVICENOW_TOKEN_SECRET_NAME"),
    "servicenowSigningSecret": (
        "servicenowSigningSecretName",
        "servicenow-signing-secret",
        "SERVICENOW_SIGNING_SECRET_NAME",
    ),
    "provisionSigningSecret": (
        "provisionSigningSecretName",
        "provision-signing-secret",
        "PROVISION_SIGNING_SECRET_NAME",
    ),
    "bridgeCallbackSigningSecret": (
        "bridgeCallbackSigningSecretName",
        "callback-signing-secret",
        "BRIDGE_CALLBACK_SIGNING_SECRET_NAME",
    ),
}
VALUE = "not-a-real-secret"


def deploy(unreserved: str = RFC3986_UNRESERVED, **params: object) -> tuple[list[str], dict[str, str]]:
    """(the names of every secret child ARM would see, the *_SECRET_NAME app settings)."""
    main = Evaluation(bicep_file(INFRA / "main.bicep"), REQUIRED | params, unreserved=unreserved)
    secrets = main.module_param("keyVault", "secrets")
    vault = Evaluation(bicep_file(INFRA / "app" / "keyvault.bicep"), {"secrets": secrets}, unreserved=unreserved)
    return vault.loop_items("secret", "name"), main.var("secretNameSettings")


def assert_valid(names: list[str]) -> None:
    for name in names:
        assert isinstance(name, str) and KEY_VAULT_SECRET_NAME.fullmatch(name), f"secret child named {name!r}"


def test_default_parameters_create_no_nameless_secret():
    names, settings_ = deploy()
    assert names == []  # no value given: nothing to write, and no child with an empty name
    assert settings_ == {"POINT_CLIENT_SECRET_NAME": "point-client-secret"}


@pytest.mark.parametrize("value_param", sorted(FEATURES))
def test_each_feature_turned_on_gets_its_default_secret_and_setting(value_param):
    name_param, default_name, setting = FEATURES[value_param]
    names, settings_ = deploy(**{value_param: VALUE})
    assert_valid(names)
    assert names == [default_name]
    assert settings_[setting] == default_name
    expected_settings = {setting} | {"POINT_CLIENT_SECRET_NAME"}  # the client secret's feature is on by default
    assert set(settings_) == expected_settings


def test_every_feature_on_at_once():
    names, settings_ = deploy(**{value_param: VALUE for value_param in FEATURES})
    assert_valid(names)
    assert sorted(names) == sorted(default for _, default, _ in FEATURES.values())
    assert settings_ == {setting: default for _, default, setting in FEATURES.values()}


@pytest.mark.parametrize("value_param", sorted(FEATURES))
def test_each_feature_with_its_own_names_during_rotation(value_param):
    name_param, _, setting = FEATURES[value_param]
    names, settings_ = deploy(**{value_param: VALUE, name_param: "hook-2,hook-1"})
    assert names == ["hook-2"]  # the value goes to the first name: the new one
    assert settings_[setting] == "hook-2,hook-1"


def test_a_feature_named_but_without_a_value_sets_its_setting_and_writes_nothing():
    names, settings_ = deploy(jiraWebhookSecretName="jira-hook")
    assert names == []
    assert settings_["JIRA_WEBHOOK_SECRET_NAME"] == "jira-hook"


def test_federated_mode_drops_the_client_secret_even_when_a_value_is_given():
    names, settings_ = deploy(usePointClientSecret=False, pointClientSecret=VALUE)
    assert names == []
    assert settings_ == {}


def test_an_empty_name_with_a_value_falls_back_to_the_default_name():
    names, settings_ = deploy(pointClientSecret=VALUE, pointClientSecretName="  ")
    assert names == ["point-client-secret"]
    assert settings_["POINT_CLIENT_SECRET_NAME"] == "point-client-secret"


@pytest.mark.parametrize(
    ("typed", "written", "setting"),
    [
        ("a ,b", "a", "a,b"),
        (" hook-2 , hook-1 ", "hook-2", "hook-2,hook-1"),
        ("\tjira-webhook-secret\n", "jira-webhook-secret", "jira-webhook-secret"),
    ],
)
def test_names_with_spaces_around_them_are_trimmed(typed, written, setting):
    names, settings_ = deploy(jiraWebhookSecret=VALUE, jiraWebhookSecretName=typed)
    assert names == [written]
    assert settings_["JIRA_WEBHOOK_SECRET_NAME"] == setting


@pytest.mark.parametrize(
    "typed",
    ["jira_webhook", "jira webhook", "jira.webhook", "a,", ",a", "a,,b", " , ", "x" * 128, "geheim-ä", "a%20b"],
)
def test_names_key_vault_refuses_stop_the_deployment_with_the_names_in_the_message(typed):
    with pytest.raises(TemplateError) as refused:
        deploy(jiraWebhookSecret=VALUE, jiraWebhookSecretName=typed)
    message = str(refused.value)
    assert "letters, digits and hyphens" in message and "*_SECRET_NAME" in message
    refused_names = [name.strip() for name in typed.split(",") if not KEY_VAULT_SECRET_NAME.fullmatch(name.strip())]
    assert refused_names and all(f"[{name}]" in message for name in refused_names)
    assert VALUE not in message


def test_a_refused_name_without_a_value_is_refused_too():
    # the bridge would read it from the vault, where no such name can exist
    with pytest.raises(TemplateError, match=r"\[bad_name\]"):
        deploy(servicenowTokenSecretName="bad_name")


names_typed = st.lists(
    st.text(alphabet=st.sampled_from("aZ09-_. ~!*'()é%\t"), min_size=0, max_size=6), min_size=1, max_size=3
).map(",".join)


@settings(max_examples=150, deadline=None)
@given(typed=names_typed, unreserved=st.sampled_from([RFC3986_UNRESERVED, JS_UNRESERVED]))
def test_the_template_accepts_exactly_the_names_key_vault_accepts(typed, unreserved):
    """Whichever characters ARM's uriComponent() leaves alone, the check equals Key Vault's rule."""
    expected_names = [name.strip() for name in typed.split(",")] if typed.strip() else []
    acceptable = all(KEY_VAULT_SECRET_NAME.fullmatch(name) for name in expected_names)
    try:
        names, settings_ = deploy(unreserved, provisionSigningSecret=VALUE, provisionSigningSecretName=typed)
    except TemplateError as refused:
        assert not acceptable, f"{typed!r} refused: {refused}"
        return
    assert acceptable, f"{typed!r} accepted"
    assert_valid(names)
    if expected_names:
        assert names == [expected_names[0]]
        assert settings_["PROVISION_SIGNING_SECRET_NAME"] == ",".join(expected_names)
    else:  # nothing typed: the default name
        assert names == ["provision-signing-secret"]


# ------------------------------------------------ secrets never roll back
# Each secret value's azd name, and the secret-name setting that keeps its feature on.
SECRET_ENV = {
    "POINT_CLIENT_SECRET": "POINT_CLIENT_SECRET_NAME",
    "POINT_WEBHOOK_KEY": "POINT_WEBHOOK_KEY_SECRET_NAME",
    "JIRA_WEBHOOK_SECRET": "JIRA_WEBHOOK_SECRET_NAME",
    "JIRA_API_TOKEN": "JIRA_API_TOKEN_SECRET_NAME",
    "SERVICENOW_PASSWORD": "SERVICENOW_PASSWORD_SECRET_NAME",
    "SERVICENOW_TOKEN": "SERVICENOW_TOKEN_SECRET_NAME",
    "SERVICENOW_SIGNING_SECRET": "SERVICENOW_SIGNING_SECRET_NAME",
    "PROVISION_SIGNING_SECRET": "PROVISION_SIGNING_SECRET_NAME",
    "BRIDGE_CALLBACK_SIGNING_SECRET": "BRIDGE_CALLBACK_SIGNING_SECRET_NAME",
}
AZD_ENV = {
    "AZURE_ENV_NAME": "deskbridge-test",
    "AZURE_LOCATION": "westeurope",
    "AZURE_PRINCIPAL_ID": "44444444-4444-4444-4444-444444444444",
    "POINT_URL": "https://contoso.point.syskit.com",
    "POINT_API_APP_ID": "11111111-1111-1111-1111-111111111111",
    "POINT_CLIENT_ID": "22222222-2222-2222-2222-222222222222",
}
PROVISIONED_AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _with_every_secret() -> dict[str, str]:
    return AZD_ENV | {name: f"value-of-{name.lower()}" for name in SECRET_ENV}


def test_the_secret_values_their_expiries_and_names_are_azd_values_the_outputs_clear_or_keep():
    values = parameters_file()
    outputs = bicep_file(INFRA / "main.bicep").outputs
    for value_name, name_setting in SECRET_ENV.items():
        referenced = {name for text in values.values() for name in env_names(text)}
        assert {value_name, f"{value_name}_EXPIRES_ON", name_setting} <= referenced, value_name
        assert {value_name, f"{value_name}_EXPIRES_ON", name_setting} <= set(outputs), value_name
    # every output azd feeds back into the next provision can be followed by the evaluator
    main = Evaluation(bicep_file(INFRA / "main.bicep"), parameter_values(AZD_ENV))
    for name in outputs_azd_reads_back():
        assert isinstance(main.output(name), str), name


def test_provisioning_twice_with_the_same_environment_writes_no_secret_the_second_time():
    env = _with_every_secret() | {"POINT_CLIENT_SECRET_EXPIRES_ON": "2027-06-30T00:00:00Z"}
    first = provision(env, now=PROVISIONED_AT)
    assert sorted(secret["name"] for secret in first.secrets) == sorted(default for _, default, _ in FEATURES.values())
    assert {secret["value"] for secret in first.secrets} == {env[name] for name in SECRET_ENV}
    for value_name in SECRET_ENV:  # the outputs cleared every value and expiry in the azd environment
        assert first.env[value_name] == "" and first.env[f"{value_name}_EXPIRES_ON"] == ""
    second = provision(first.env, now=PROVISIONED_AT + timedelta(days=40))
    assert second.secrets == []  # nothing written: a value rotated in between stays
    assert second.settings == first.settings  # and every feature stays on, under the same names
    assert second.env == first.env  # a third provision would be the second again
    assert provision(second.env).secrets == []


def test_a_rotation_through_azd_writes_that_secret_once_with_its_own_expiry():
    first = provision(_with_every_secret(), now=PROVISIONED_AT)
    rotated = first.env | {"JIRA_API_TOKEN": "the-new-token", "JIRA_API_TOKEN_EXPIRES_ON": "2027-03-01"}
    again = provision(rotated, now=PROVISIONED_AT + timedelta(days=90))
    assert again.secrets == [{"name": "jira-api-token", "value": "the-new-token", "exp": _epoch("2027-03-01")}]
    assert again.env["JIRA_API_TOKEN"] == "" and again.env["JIRA_API_TOKEN_EXPIRES_ON"] == ""
    assert provision(again.env).secrets == []


def test_a_rotation_to_the_second_name_keeps_both_names_and_writes_the_first():
    first = provision(_with_every_secret(), now=PROVISIONED_AT)
    rotated = first.env | {
        "JIRA_WEBHOOK_SECRET": "new-hook",
        "JIRA_WEBHOOK_SECRET_NAME": "jira-hook-2,jira-webhook-secret",
    }
    again = provision(rotated, now=PROVISIONED_AT)
    assert [secret["name"] for secret in again.secrets] == ["jira-hook-2"]
    assert again.env["JIRA_WEBHOOK_SECRET_NAME"] == "jira-hook-2,jira-webhook-secret"
    assert again.settings["JIRA_WEBHOOK_SECRET_NAME"] == "jira-hook-2,jira-webhook-secret"


def test_expiry_explicit_when_given_else_secrets_expire_on_else_a_year_from_the_provision():
    env = AZD_ENV | {
        "POINT_CLIENT_SECRET": "client-secret",
        "POINT_CLIENT_SECRET_EXPIRES_ON": "2027-06-30T00:00:00Z",  # the Entra secret's real end date
        "JIRA_API_TOKEN": "token",
    }
    by_name = {secret["name"]: secret["exp"] for secret in provision(env, now=PROVISIONED_AT).secrets}
    assert by_name["point-client-secret"] == _epoch("2027-06-30T00:00:00")
    assert by_name["jira-api-token"] == _epoch("2027-12-07T12:00:00")  # secretsExpireOn's default: P1Y
    env_wide = provision(env | {"SECRETS_EXPIRE_ON": "2027-01-31"}, now=PROVISIONED_AT).secrets
    assert {secret["name"]: secret["exp"] for secret in env_wide} == {
        "point-client-secret": _epoch("2027-06-30T00:00:00"),
        "jira-api-token": _epoch("2027-01-31T00:00:00"),
    }


def test_a_feature_turned_on_by_its_value_alone_stays_on_after_the_value_is_cleared():
    first = provision(AZD_ENV | {"POINT_WEBHOOK_KEY": "whk"}, now=PROVISIONED_AT)
    assert first.env["POINT_WEBHOOK_KEY_SECRET_NAME"] == "point-webhook-key"
    assert provision(first.env).settings["POINT_WEBHOOK_KEY_SECRET_NAME"] == "point-webhook-key"
    # a feature that was never on stays off: its name comes back empty, and empty is the default
    assert first.env["SERVICENOW_TOKEN_SECRET_NAME"] == ""
    assert "SERVICENOW_TOKEN_SECRET_NAME" not in provision(first.env).settings


def test_every_secure_parameter_is_cleared_from_the_azd_environment_by_an_empty_output():
    """A secret value added later (another branch's) must also be written once: its azd value cleared."""
    main = bicep_file(INFRA / "main.bicep")
    evaluation = Evaluation(main, parameter_values(AZD_ENV))
    values = parameters_file()
    secure = [name for name in main.params if _is_secure(main, name)]
    assert len(secure) >= len(SECRET_ENV)
    gaps = []
    for parameter in secure:
        (env_name,) = env_names(values[parameter])
        for name in (env_name, f"{env_name}_EXPIRES_ON"):
            if name not in main.outputs or evaluation.output(name) != "":
                gaps.append(f"output {name} string = ''")
    assert gaps == [], "add to infra/main.bicep (so a provision writes the value once):\n" + "\n".join(gaps)


def _is_secure(main, name: str) -> bool:
    return any(call.text.decode() == "secure()" for call in main.decorators.get(name, []))

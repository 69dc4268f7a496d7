"""What the template promises, asserted on pycep's parse of infra/*.bicep."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml
from bicep_eval import Evaluation, bicep_file
from infra_helpers import INFRA, ROOT, object_keys, parsed, resource

ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
}
# Granted to principalId (azd: AZURE_PRINCIPAL_ID) only when grantDeployerDataAccess is on, for local runs.
USER_ROLES = {
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
}
# siteConfig properties a Flex Consumption site refuses (ARM BadRequest 51021, "... for Flex
# Consumption sites is invalid"), from Microsoft's list of properties deprecated on Flex
# Consumption and from the 51021 errors users reported (microsoft/azure-pipelines-tasks#21032,
# Azure/terraform-azurerm-avm-res-web-site#283 and #345, pulumi/pulumi-azure-native#4168,
# Azure/azure-functions-host#10643).
FLEX_REFUSED_SITE_CONFIG = {
    "ftpsState",
    "alwaysOn",
    "use32BitWorkerProcess",
    "linuxFxVersion",
    "windowsFxVersion",
    "netFrameworkVersion",
    "javaVersion",
    "javaContainer",
    "javaContainerVersion",
    "powerShellVersion",
    "phpVersion",
    "pythonVersion",
    "nodeVersion",
    "preWarmedInstanceCount",
    "functionAppScaleLimit",
    "functionsRuntimeScaleMonitoringEnabled",
    "minimumElasticInstanceCount",
    "appSettings",  # the app settings live in the sites/config 'appsettings' resource
}
# What the template sets, each checked: none is on Microsoft's Flex deprecation list, and the
# azurerm provider's Flex Consumption resource sends exactly these for a Flex site.
FLEX_ACCEPTED_SITE_CONFIG = {"minTlsVersion", "scmMinTlsVersion", "http20Enabled"}
# Site properties Flex Consumption renamed or dropped (functionAppConfig replaces them).
FLEX_REFUSED_SITE_PROPERTIES = {"containerSize", "dailyMemoryTimeQuota", "isXenon", "hyperV"}
SECRET_VALUE_PARAMS = {
    "pointClientSecret",
    "pointWebhookKey",
    "jiraWebhookSecret",
    "jiraApiToken",
    "servicenowPassword",
    "servicenowToken",
    "servicenowSigningSecret",
    "provisionSigningSecret",
    "bridgeCallbackSigningSecret",
}


def _variable(doc, name):
    return doc["variables"][name]["value"]


def test_main_is_subscription_scope_and_creates_the_resource_group():
    bicep = parsed()
    main = bicep["main"]
    assert main["globals"]["scope"]["value"] == "subscription"
    (group,) = [r for r in main["resources"].values() if r["type"] == "Microsoft.Resources/resourceGroups"]
    assert not group["existing"]
    assert set(main["modules"]) >= {"identity", "storage", "keyVault", "monitoring", "functionApp", "observability"}
    for module in main["modules"].values():
        config = module["config"]
        assert (config["config"] if "condition" in config else config)["scope"] == "rg"


def test_flex_consumption_plan():
    bicep = parsed()
    plan = resource(bicep["app/function"], "plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True  # Linux


def test_function_app_runtime_and_transport():
    bicep = parsed()
    doc = bicep["app/function"]
    site = resource(doc, "functionApp")
    assert doc["resources"]["functionApp"]["type"] == "Microsoft.Web/sites"
    assert site["kind"] == "functionapp,linux"
    properties = site["properties"]
    assert properties["httpsOnly"] is True
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert properties["siteConfig"]["scmMinTlsVersion"] == "1.2"
    config = properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["scaleAndConcurrency"] == {
        "instanceMemoryMB": "instanceMemoryMB",
        "maximumInstanceCount": "maximumInstanceCount",
        "triggers": {"http": {"perInstanceConcurrency": "httpPerInstanceConcurrency"}},
    }
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert site["identity"]["type"] == "UserAssigned"
    for name in ("ftpPublishing", "scmPublishing"):
        assert resource(doc, name)["properties"]["allow"] is False


def test_flex_site_sets_no_property_flex_consumption_refuses():
    bicep = parsed()
    doc = bicep["app/function"]
    site = resource(doc, "functionApp")["properties"]
    site_config = site["siteConfig"]
    assert not FLEX_REFUSED_SITE_CONFIG & set(site_config), FLEX_REFUSED_SITE_CONFIG & set(site_config)
    assert set(site_config) <= FLEX_ACCEPTED_SITE_CONFIG, "check a new siteConfig property against Flex first"
    assert not FLEX_REFUSED_SITE_PROPERTIES & set(site)
    # no 'web' config resource setting them behind the site's back
    configs = [name for name, res in doc["resources"].items() if res["type"] == "Microsoft.Web/sites/config"]
    assert [resource(doc, name)["name"] for name in configs] == ["appsettings"]
    # FTP stays off without ftpsState: the ftp publishing-credentials policy refuses it
    assert resource(doc, "ftpPublishing")["name"] == "ftp"
    assert resource(doc, "ftpPublishing")["properties"]["allow"] is False


def test_location_offers_only_flex_consumption_regions_and_azd_asks_for_one():
    main = bicep_file(INFRA / "main.bicep")
    allowed = Evaluation(main, {}).eval(main.decorator("location", "allowed"), {})
    assert "westeurope" in allowed and "eastus" in allowed and len(allowed) == len(set(allowed)) >= 20
    assert all(re.fullmatch(r"[a-z0-9]+", region) for region in allowed)
    assert "eastus2euap" not in allowed  # a canary region, not for customers
    for not_flex in ("westindia", "chinaeast", "usgovvirginia", "qatarcentral"):
        assert not_flex not in allowed
    metadata = Evaluation(main, {}).eval(main.decorator("location", "metadata"), {})
    assert metadata == {"azd": {"type": "location"}}
    # pycep (checkov's reader) sees the same list
    decorators = parsed()["main"]["parameters"]["location"]["decorators"]
    assert {"type": "allowed", "argument": allowed} in decorators


def test_scale_settings_are_parameters():
    bicep = parsed()
    params = bicep["main"]["parameters"]
    assert params["instanceMemoryMB"]["type"] == "int"
    assert params["maximumInstanceCount"]["type"] == "int"
    module = bicep["main"]["modules"]["functionApp"]["config"]["params"]
    assert module["instanceMemoryMB"] == "instanceMemoryMB"
    assert module["maximumInstanceCount"] == "maximumInstanceCount"
    assert params["httpPerInstanceConcurrency"]["type"] == "int"
    assert module["httpPerInstanceConcurrency"] == "httpPerInstanceConcurrency"


def test_storage_account_allows_no_keys_and_no_public_blobs():
    bicep = parsed()
    account = resource(bicep["app/storage"], "storage")["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["supportsHttpsTrafficOnly"] is True
    assert account["defaultToOAuthAuthentication"] is True


def test_storage_has_the_deployment_container_tables_and_queues():
    bicep = parsed()
    doc = bicep["app/storage"]
    types = {r["type"] for r in doc["resources"].values()}
    assert {
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "Microsoft.Storage/storageAccounts/tableServices/tables",
        "Microsoft.Storage/storageAccounts/queueServices/queues",
    } <= types
    params = bicep["main"]["modules"]["storage"]["config"]["params"]
    assert params["tableNames"] == ["bridgeLedgerTable", "bridgeDeliveriesTable"]
    assert params["queueNames"] == [
        "bridgeRetryQueue",
        "bridgeRetryPoisonQueue",
        "bridgeDeskQueue",
        "bridgeDeskPoisonQueue",
    ]


def test_role_assignments_are_the_five_roles_for_the_managed_identity_only():
    bicep = parsed()
    assigned = []
    for path, doc in bicep.items():
        for name, res in doc["resources"].items():
            if res["type"] != "Microsoft.Authorization/roleAssignments":
                continue
            body = resource(doc, name)["properties"]
            if body["principalId"] == "userPrincipalId":
                continue  # the optional grants for the deploying user (next test)
            assert body["principalType"] == "ServicePrincipal", (path, name)
            assert body["principalId"] == "principalId", (path, name)
            role_variable = body["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
            assigned.append(_variable(doc, role_variable))
    assert sorted(assigned) == sorted(ROLES)
    for module in ("storage", "keyVault", "monitoring"):
        params = bicep["main"]["modules"][module]["config"]["params"]
        outputs = {
            "operator": {"type": "property_accessor", "operands": {"operand_1": "outputs", "operand_2": "principalId"}}
        }
        accessor = {"type": "property_accessor", "operands": {"operand_1": "identity", "operand_2": outputs}}
        assert params["principalId"] == {"operator": accessor}


def test_the_deploying_user_gets_secrets_officer_and_the_storage_data_roles_only_when_named_and_opted_in():
    bicep = parsed()
    granted = []
    for path in ("app/keyvault", "app/storage"):
        doc = bicep[path]
        assert doc["parameters"]["userPrincipalId"]["default"] == ""
        for name, res in doc["resources"].items():
            if res["type"] != "Microsoft.Authorization/roleAssignments":
                continue
            body = resource(doc, name)["properties"]
            if body["principalId"] != "userPrincipalId":
                continue
            config = doc["resources"][name]["config"]
            condition = config["condition"]
            assert condition["operator"]["type"] == "not", (path, name)  # if (!empty(userPrincipalId))
            assert condition["operator"]["operands"]["bool_value"]["function"]["type"] == "empty"
            assert body["principalType"] == "userPrincipalType"
            role = body["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
            if "loop_type" in config:  # one assignment per role of a list
                roles = _variable(doc, config["loop_type"]["detail"]["array_name"])
                granted += [_variable(doc, item) for item in roles]
            else:
                granted.append(_variable(doc, role))
    assert sorted(granted) == sorted(USER_ROLES)
    main = bicep["main"]
    assert main["parameters"]["principalId"]["default"] == ""
    grant = main["parameters"]["grantDeployerDataAccess"]
    assert (grant["type"], grant["default"]) == ("bool", False)  # opt-in: production grants nothing
    for module in ("keyVault", "storage"):
        params = main["modules"][module]["config"]["params"]
        assert (params["userPrincipalId"], params["userPrincipalType"]) == ("deployerPrincipalId", "principalType")
    azd = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert azd["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert azd["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE=User}"
    assert azd["grantDeployerDataAccess"]["value"] == "${GRANT_DEPLOYER_DATA_ACCESS}"


@pytest.mark.parametrize(
    ("grant", "expected"), [(None, ""), (False, ""), (True, "44444444-4444-4444-4444-444444444444")]
)
def test_the_deployer_principal_reaches_the_data_role_modules_only_when_granted(grant, expected):
    """azd always sets AZURE_PRINCIPAL_ID; only GRANT_DEPLOYER_DATA_ACCESS=true lets it through."""
    params = {"environmentName": "deskbridge-dev", "location": "westeurope"}
    params["principalId"] = "44444444-4444-4444-4444-444444444444"
    if grant is not None:
        params["grantDeployerDataAccess"] = grant
    main = Evaluation(bicep_file(INFRA / "main.bicep"), params)
    for module in ("storage", "keyVault"):
        assert main.module_param(module, "userPrincipalId") == expected
    for path in ("storage", "keyvault"):  # and the modules grant nothing to an empty principal
        template = bicep_file(INFRA / "app" / f"{path}.bicep")
        (user_roles,) = [name for name in template.resources if name.startswith("user")]
        node = template.value_node(template.resources[user_roles])
        if node.type == "for_statement":
            node = node.child_by_field_name("body")
        assert node.type == "if_statement"
        condition = node.named_children[0]
        assert Evaluation(template, {"userPrincipalId": expected}).eval(condition, {}) is bool(expected)


def test_one_user_assigned_identity():
    bicep = parsed()
    identities = [
        (path, name)
        for path, doc in bicep.items()
        for name, res in doc["resources"].items()
        if res["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    ]
    assert identities == [("app/identity", "identity")]


def test_key_vault_rbac_soft_delete_purge_protection():
    bicep = parsed()
    doc = bicep["app/keyvault"]
    vault = resource(doc, "vault")["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert "accessPolicies" not in vault
    # on unless turned off; off is null, never false (Key Vault refuses false)
    assert vault["enablePurgeProtection"]["operator"]["operands"] == {
        "condition": "purgeProtection",
        "true_value": True,
        "false_value": None,
    }
    assert doc["parameters"]["purgeProtection"]["default"] is True
    main = bicep["main"]
    assert main["parameters"]["keyVaultPurgeProtection"]["default"] is True
    assert main["modules"]["keyVault"]["config"]["params"]["purgeProtection"] == "keyVaultPurgeProtection"
    azd = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert azd["keyVaultPurgeProtection"]["value"] == "${KEY_VAULT_PURGE_PROTECTION=true}"
    assert azd["keyVaultName"]["value"] == "${AZURE_KEY_VAULT_NAME_OVERRIDE}"


def _vault_name(**params):
    main = bicep_file(INFRA / "main.bicep")
    required = {"environmentName": "deskbridge-trial", "location": "westeurope"}
    provisioned_at = params.pop("now", None)
    return Evaluation(main, required | params, now=provisioned_at).module_param("keyVault", "name")


def test_key_vault_name_is_the_same_on_every_provision_of_one_environment():
    first = _vault_name(now=datetime(2026, 1, 1, tzinfo=UTC))
    again = _vault_name(now=datetime(2026, 1, 2, 12, 30, tzinfo=UTC))
    assert first == again  # azd provision twice, or azd down --purge && azd up
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,22}[a-z0-9]", first)  # Key Vault: 3-24, a letter first
    assert _vault_name(environmentName="deskbridge-prod") != first
    assert _vault_name(keyVaultName="kv-deskbridge-2") == "kv-deskbridge-2"


def test_secrets_are_written_only_when_a_value_is_given():
    bicep = parsed()
    doc = bicep["app/keyvault"]
    secret = doc["resources"]["secret"]["config"]
    # filtered before the loop, not skipped by a condition: ARM checks every child's name first
    assert secret["condition"] is None
    assert secret["loop_type"]["detail"]["array_name"] == "secretsToSet"
    kept = _variable(doc, "secretsToSet")["function"]
    assert kept["type"] == "filter" and kept["parameters"]["input_array"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "secrets", "operand_2": "items"}}
    }
    source = (INFRA / "app" / "keyvault.bicep").read_text(encoding="utf-8")
    assert "filter(secrets.items, item => !empty(item.name) && !empty(item.value))" in source
    assert {"type": "secure"} in doc["parameters"]["secrets"]["decorators"]
    main = bicep["main"]["parameters"]
    for name in SECRET_VALUE_PARAMS:
        assert {"type": "secure"} in main[name]["decorators"], name
        assert main[name]["default"] == "", name  # optional, never a value
    secure = {name for name, p in main.items() if {"type": "secure"} in p["decorators"]}
    assert secure == SECRET_VALUE_PARAMS
    items = _variable(bicep["main"], "secretsToWrite")
    values = {item["value"] if isinstance(item["value"], str) else "pointClientSecret" for item in items}
    assert values == SECRET_VALUE_PARAMS


def test_monitoring_uses_entra_id_only():
    bicep = parsed()
    insights = resource(bicep["app/monitoring"], "applicationInsights")["properties"]
    assert insights["DisableLocalAuth"] is True
    assert insights["WorkspaceResourceId"]
    settings = resource(bicep["app/function"], "appSettings")["properties"]
    literal = settings["function"]["parameters"]["arg_2"]
    assert literal["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsightsConnectionString"
    assert literal["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"


def test_storage_connection_is_identity_based():
    bicep = parsed()
    settings = resource(bicep["app/function"], "appSettings")["properties"]
    literal = settings["function"]["parameters"]["arg_2"]
    assert literal["AzureWebJobsStorage__credential"] == "managedidentity"
    assert literal["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert literal["AZURE_CLIENT_ID"] == "identityClientId"
    for service in ("blob", "queue", "table"):
        assert literal[f"AzureWebJobsStorage__{service}ServiceUri"] == f"storage{service.capitalize()}Endpoint"
    keys = object_keys(settings, bicep["app/function"].get("variables", {}))
    assert "AzureWebJobsStorage" not in keys  # no connection string, no key
    assert not {"FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME", "WEBSITE_RUN_FROM_PACKAGE"} & keys


@pytest.mark.parametrize(
    ("point_auth_mode", "use_client_secret", "expected"),
    [
        (None, None, "secret"),
        (None, False, "federated"),
        ("federated", None, "federated"),
        ("federated", True, "federated"),  # POINT_AUTH_MODE, the setting's own name, wins
        ("secret", False, "secret"),
    ],
)
def test_point_auth_mode_is_its_own_azd_value_with_the_older_switch_as_fallback(
    point_auth_mode, use_client_secret, expected
):
    bicep = parsed()
    main = bicep["main"]
    use_secret = main["parameters"]["usePointClientSecret"]
    assert (use_secret["type"], use_secret["default"]) == ("bool", True)
    literal = _variable(main, "bridgeSettings")["function"]["parameters"]["arg_2"]
    assert literal["POINT_AUTH_MODE"] == "effectivePointAuthMode"
    params = {"environmentName": "deskbridge-test", "location": "westeurope"}
    if point_auth_mode is not None:
        params["pointAuthMode"] = point_auth_mode
    if use_client_secret is not None:
        params["usePointClientSecret"] = use_client_secret
    evaluation = Evaluation(bicep_file(INFRA / "main.bicep"), params)
    assert evaluation.var("effectivePointAuthMode") == expected
    assert (evaluation.var("pointClientSecretNames") == []) is (expected == "federated")


def test_workbook_alert_and_action_group():
    bicep = parsed()
    doc = bicep["app/observability"]
    types = {r["type"] for r in doc["resources"].values()}
    assert {
        "Microsoft.Insights/workbooks",
        "Microsoft.Insights/actionGroups",
        "Microsoft.Insights/scheduledQueryRules",
    } <= types
    receivers = resource(doc, "actionGroup")["properties"]["emailReceivers"]["operator"]["operands"]["false_value"]
    assert receivers[0]["emailAddress"] == "alertEmail"
    assert bicep["main"]["modules"]["observability"]["config"]["params"]["alertEmail"] == "alertEmail"
    query = _variable(doc, "requestsQuery")
    for word in ("poisoned", "failed", "uncertain", "d.ticket", "parse_json(extract(", "by source, ticket"):
        assert word in query
    problems = _variable(doc, "problemsQuery")
    assert 'event in ("authorization", "config", "secret", "storage", "error", "overdue")' in problems
    rules = {name: resource(doc, name)["properties"] for name in ("attentionAlert", "problemsAlert")}
    assert [r["criteria"]["allOf"][0]["query"] for r in rules.values()] == ["requestsQuery", "problemsQuery"]
    assert (rules["attentionAlert"]["severity"], rules["problemsAlert"]["severity"]) == (2, 1)
    for rule in rules.values():
        assert rule["actions"]["actionGroups"] == [
            {"operator": {"type": "property_accessor", "operands": {"operand_1": "actionGroup", "operand_2": "id"}}}
        ]


def test_workbook_queries_the_agreed_custom_dimensions():
    workbook = json.loads((INFRA / "app" / "workbook.json").read_text(encoding="utf-8"))
    assert workbook["version"] == "Notebook/1.0"
    assert workbook["fallbackResourceIds"] == ["__APP_INSIGHTS_ID__"]
    queries = [item["content"]["query"] for item in workbook["items"] if item["type"] == 3]
    text = "\n".join(queries)
    for event in ("approval", "point_call", "poisoned"):
        assert f'bridge_event) == "{event}"' in text
    for dimension in ("source", "ticket", "outcome", "point_status", "duration_ms"):
        assert f"d.{dimension}" in text  # the JSON object that ends each structured line
    (metrics,) = [item["content"] for item in workbook["items"] if item["type"] == 10]
    assert metrics["resourceIds"] == ["__QUEUE_SERVICE_ID__"]
    assert metrics["metrics"][0]["metric"].endswith("QueueMessageCount")


def test_outputs():
    bicep = parsed()
    outputs = bicep["main"]["outputs"]
    assert {
        "AZURE_FUNCTION_APP_NAME",
        "FUNCTION_APP_URL",
        "AZURE_KEY_VAULT_NAME",
        "MANAGED_IDENTITY_CLIENT_ID",
        "FEDERATED_CREDENTIAL_ISSUER",
        "FEDERATED_CREDENTIAL_SUBJECT",
        "FEDERATED_CREDENTIAL_AUDIENCE",
    } <= set(outputs)
    assert outputs["FEDERATED_CREDENTIAL_AUDIENCE"]["value"] == "api://AzureADTokenExchange"
    assert outputs["FEDERATED_CREDENTIAL_ISSUER"]["value"].endswith("${tenant().tenantId}/v2.0")


def test_parameters_file_matches_main():
    bicep = parsed()
    params = bicep["main"]["parameters"]
    values = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert set(values) <= set(params), set(values) - set(params)
    required = {name for name, p in params.items() if p.get("default") is None}
    assert required <= set(values), required - set(values)
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"
    for name in SECRET_VALUE_PARAMS:
        assert re.fullmatch(r"\$\{[A-Z_]+\}", values[name]["value"]), name


def test_azure_yaml_deploys_the_function_app():
    config = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert config["services"]["api"] == {"project": ".", "language": "python", "host": "function"}
    assert config["infra"]["path"] == "infra"


def test_the_readme_gives_secret_values_to_azd_as_key_vault_references():
    """`azd env set` keeps a value in plain text in .azure/<env>/.env; `azd env set-secret` keeps a reference."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    values = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    variables = {values[name]["value"].strip("${}") for name in SECRET_VALUE_PARAMS}
    assert "azd env set-secret POINT_CLIENT_SECRET" in readme
    for variable in variables:
        assert not re.search(rf"azd env set {variable} +(?!'')['\"<]", readme), f"{variable} in plain text"

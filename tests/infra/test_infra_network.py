"""Network isolation (vnetEnabled), both settings of the switch, from the template text.

With the switch on, the function app sends its outbound traffic through a
subnet delegated to Flex Consumption, storage (blob, queue, table) and the
vault are reached through private endpoints whose private DNS zones are
linked to that network, and both turn public network access off. With it
off (the default), none of that is deployed and both stay public, for Entra
ID callers only. checkov's view of both settings is in test_infra_checkov.py.
"""

from __future__ import annotations

import json

import pytest
from bicep_eval import Evaluation, bicep_file
from infra_helpers import INFRA, parsed, resource

MAIN = {"environmentName": "deskbridge-test", "location": "westeurope"}
STORAGE_ID = "/subscriptions/s/resourceGroups/rg-deskbridge-test/providers/Microsoft.Storage/storageAccounts/stabc"
VAULT_ID = "/subscriptions/s/resourceGroups/rg-deskbridge-test/providers/Microsoft.KeyVault/vaults/kv-abc"
NETWORK = {
    "vnetName": "vnet-abc",
    "location": "westeurope",
    "vnetAddressPrefix": "10.40.0.0/16",
    "appSubnetPrefix": "10.40.1.0/24",
    "privateEndpointSubnetPrefix": "10.40.2.0/24",
    "storageAccountId": STORAGE_ID,
    "keyVaultId": VAULT_ID,
}


def _accessor(target, prop):
    """pycep's form of `target.prop`."""
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": target, "operand_2": prop}}}


def test_the_switch_is_an_azd_value_and_off_by_default():
    params = parsed()["main"]["parameters"]
    assert (params["vnetEnabled"]["type"], params["vnetEnabled"]["default"]) == ("bool", False)
    azd = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert azd["vnetEnabled"]["value"] == "${VNET_ENABLED}"
    for module in ("app/storage", "app/keyvault"):
        assert parsed()[module]["parameters"]["privateNetworkOnly"]["default"] is False


@pytest.mark.parametrize("on", [False, True], ids=["vnet-off", "vnet-on"])
def test_the_switch_deploys_the_network_and_closes_storage_and_the_vault(on):
    main = Evaluation(bicep_file(INFRA / "main.bicep"), MAIN | {"vnetEnabled": on})
    assert main.condition("network") is on
    assert main.module_param("storage", "privateNetworkOnly") is on
    assert main.module_param("keyVault", "privateNetworkOnly") is on
    expected_access, expected_default = ("Disabled", "Deny") if on else ("Enabled", "Allow")
    for path, name in (("storage", "storage"), ("keyvault", "vault")):
        template = Evaluation(bicep_file(INFRA / "app" / f"{path}.bicep"), {"privateNetworkOnly": on})
        assert template.resource_property(name, "properties", "publicNetworkAccess") == expected_access, path
        acls = template.resource_property(name, "properties", "networkAcls")
        assert acls == {"bypass": "AzureServices", "defaultAction": expected_default}, path
    if not on:
        assert main.module_param("functionApp", "virtualNetworkSubnetId") == ""


@pytest.mark.parametrize(
    ("subnet", "expected"), [("", None), ("/subscriptions/s/x/subnets/app", "/subscriptions/s/x/subnets/app")]
)
def test_the_function_app_joins_the_subnet_only_when_given_one(subnet, expected):
    function = Evaluation(bicep_file(INFRA / "app" / "function.bicep"), {"virtualNetworkSubnetId": subnet})
    assert function.resource_property("functionApp", "properties", "virtualNetworkSubnetId") == expected
    # main.bicep hands it the network module's app subnet when the switch is on
    wiring = parsed()["main"]["modules"]["functionApp"]["config"]["params"]["virtualNetworkSubnetId"]
    operands = wiring["operator"]["operands"]
    assert operands["condition"] == "vnetEnabled" and operands["false_value"] == ""
    assert "appSubnetId" in json.dumps(operands["true_value"])


def test_the_app_subnet_is_delegated_to_flex_consumption_and_endpoints_have_their_own():
    network = Evaluation(bicep_file(INFRA / "app" / "network.bicep"), NETWORK)
    subnets = {s["name"]: s["properties"] for s in network.resource_property("vnet", "properties", "subnets")}
    assert set(subnets) == {"app", "private-endpoints"}
    assert [d["properties"]["serviceName"] for d in subnets["app"]["delegations"]] == ["Microsoft.App/environments"]
    assert "delegations" not in subnets["private-endpoints"]
    assert subnets["app"]["addressPrefix"] == "10.40.1.0/24"
    assert subnets["private-endpoints"]["addressPrefix"] == "10.40.2.0/24"
    assert network.resource_property("vnet", "properties", "addressSpace") == {"addressPrefixes": ["10.40.0.0/16"]}


def test_a_private_endpoint_and_dns_zone_for_blob_queue_table_and_the_vault():
    network = Evaluation(bicep_file(INFRA / "app" / "network.bicep"), NETWORK)
    links = {link["groupId"]: link for link in network.var("privateLinks")}
    assert {group: (link["targetId"], link["zone"]) for group, link in links.items()} == {
        "blob": (STORAGE_ID, "privatelink.blob.core.windows.net"),
        "queue": (STORAGE_ID, "privatelink.queue.core.windows.net"),
        "table": (STORAGE_ID, "privatelink.table.core.windows.net"),
        "vault": (VAULT_ID, "privatelink.vaultcore.azure.net"),
    }
    module = parsed()["app/network"]["modules"]["privateLink"]["config"]
    assert module["loop_type"]["detail"]["array_name"] == "privateLinks"
    # each endpoint: its group id, its zone linked to the network, and a zone group naming the zone
    link = Evaluation(
        bicep_file(INFRA / "app" / "private-link.bicep"),
        {
            "name": "pe-stabc-queue",
            "location": "westeurope",
            "subnetId": "/x/subnets/private-endpoints",
            "vnetId": "/x",
            "vnetName": "vnet-abc",
            "targetId": STORAGE_ID,
            "groupId": "queue",
            "zoneName": "privatelink.queue.core.windows.net",
        },
    )
    (connection,) = link.resource_property("endpoint", "properties", "privateLinkServiceConnections")
    assert connection["properties"] == {"privateLinkServiceId": STORAGE_ID, "groupIds": ["queue"]}
    assert link.resource_property("endpoint", "properties", "subnet") == {"id": "/x/subnets/private-endpoints"}
    assert link.resource_property("zone", "name") == "privatelink.queue.core.windows.net"
    assert link.resource_property("zone", "location") == "global"
    assert link.resource_property("zoneLink", "properties") == {
        "registrationEnabled": False,
        "virtualNetwork": {"id": "/x"},
    }
    doc = parsed()["app/private-link"]
    (config,) = resource(doc, "endpointZone")["properties"]["privateDnsZoneConfigs"]
    assert config["properties"]["privateDnsZoneId"] == _accessor("zone", "id")
    assert doc["resources"]["endpointZone"]["config"]["parent"] == "endpoint"
    assert doc["resources"]["zoneLink"]["config"]["parent"] == "zone"


def test_main_points_the_endpoints_at_its_own_storage_account_and_vault():
    params = parsed()["main"]["modules"]["network"]["config"]["config"]["params"]
    assert params["storageAccountId"] == _accessor("storage", _accessor("outputs", "id"))
    assert params["keyVaultId"] == _accessor("keyVault", _accessor("outputs", "id"))
    for name in ("vnetAddressPrefix", "appSubnetPrefix", "privateEndpointSubnetPrefix"):
        assert params[name] == name

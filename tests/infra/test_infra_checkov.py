"""checkov --framework bicep over infra/: nothing fails, nothing is unparsed, every skip says why.

Both settings of the network switch are checked: infra/ as it is (vnetEnabled
off, the default) and infra/ as ARM deploys it with vnetEnabled on
(infra_helpers.with_network_isolation), where storage and the vault must pass
the private-access checks instead of skipping them.

checkov exits 0 when it cannot parse a file, so parsing errors are a failure here.
"""

from __future__ import annotations

import functools
import importlib.util

import pytest
from checkov.common.models.enums import CheckResult
from infra_helpers import (
    BICEP_FILES,
    CHECKOV_DIR,
    NETWORK_CHECKS,
    checkov_report_with_network_isolation,
    with_network_isolation,
)
from infra_helpers import checkov_report as run_checkov

SWITCH = pytest.mark.parametrize(
    "report", [run_checkov, checkov_report_with_network_isolation], ids=["vnet-off", "vnet-on"]
)

CUSTOM_CHECKS = {"CKV_DESKBRIDGE_1", "CKV_DESKBRIDGE_2", "CKV_DESKBRIDGE_3"}


@SWITCH
def test_checkov_parses_every_file(report):
    checkov_report = report()
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0, checkov_report["results"].get("parsing_errors")
    scanned = {record["file_path"] for record in checkov_report["results"]["passed_checks"]}
    assert {"/app/function.bicep", "/app/storage.bicep", "/app/keyvault.bicep"} <= scanned
    assert len(BICEP_FILES) >= 7


@SWITCH
def test_checkov_has_no_failed_checks(report):
    checkov_report = report()
    failed = [
        f"{record['check_id']} {record['resource']} ({record['file_path']}): {record['check_name']}"
        for record in checkov_report["results"]["failed_checks"]
    ]
    assert failed == []
    assert checkov_report["summary"]["failed"] == 0
    assert checkov_report["exit_code"] == 0


@SWITCH
def test_every_skip_is_justified(report):
    checkov_report = report()
    for record in checkov_report["results"]["skipped_checks"]:
        reason = (record["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) >= 30, f"{record['check_id']} on {record['resource']} needs a reason: {reason!r}"


@SWITCH
def test_custom_checks_ran_and_passed(report):
    checkov_report = report()
    passed = {record["check_id"] for record in checkov_report["results"]["passed_checks"]}
    assert CUSTOM_CHECKS <= passed
    skipped = {record["check_id"] for record in checkov_report["results"]["skipped_checks"]}
    assert not CUSTOM_CHECKS & skipped


@SWITCH
def test_the_checks_that_matter_are_not_skipped(report):
    checkov_report = report()
    # TLS, HTTPS, Key Vault purge protection and soft delete must pass, never be skipped.
    # Purge protection is a parameter (off must be null), which the built-in checks
    # CKV_AZURE_42 and CKV_AZURE_110 cannot read: CKV_DESKBRIDGE_3 checks it instead,
    # with the parameter's default, and only those two may be skipped for it.
    passed = {record["check_id"] for record in checkov_report["results"]["passed_checks"]}
    assert {"CKV_AZURE_3", "CKV_AZURE_44", "CKV_AZURE_70", "CKV_AZURE_145", "CKV_DESKBRIDGE_3"} <= passed
    vault_skips = {
        record["check_id"]
        for record in checkov_report["results"]["skipped_checks"]
        if record["resource"] == "Microsoft.KeyVault/vaults.vault"
    }
    assert vault_skips <= {"CKV_AZURE_109", "CKV_AZURE_189", "CKV_AZURE_42", "CKV_AZURE_110"}


def test_with_network_isolation_the_private_access_checks_pass_on_storage_and_the_vault(tmp_path):
    assert with_network_isolation(tmp_path / "infra") == 4  # publicNetworkAccess and defaultAction, twice
    checkov_report = checkov_report_with_network_isolation()
    passed = {
        (record["check_id"], record["resource"])
        for record in checkov_report["results"]["passed_checks"]
        if record["check_id"] in NETWORK_CHECKS
    }
    assert passed == {
        ("CKV_AZURE_35", "Microsoft.Storage/storageAccounts.storage"),
        ("CKV_AZURE_59", "Microsoft.Storage/storageAccounts.storage"),
        ("CKV_AZURE_109", "Microsoft.KeyVault/vaults.vault"),
        ("CKV_AZURE_189", "Microsoft.KeyVault/vaults.vault"),
    }
    skipped = {record["check_id"] for record in checkov_report["results"]["skipped_checks"]}
    assert not NETWORK_CHECKS & skipped
    # the same checks are skipped, with a reason, when the switch is off
    off = {record["check_id"] for record in run_checkov()["results"]["skipped_checks"]}
    assert NETWORK_CHECKS <= off
    scanned = {record["file_path"] for record in checkov_report["results"]["passed_checks"]}
    assert "/app/network.bicep" in scanned


@functools.cache  # loading registers the checks; twice would clash
def _custom_checks():
    spec = importlib.util.spec_from_file_location("deskbridge_checkov_checks", CHECKOV_DIR / "deskbridge_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_shared_key_check_fails_when_keys_are_allowed():
    check = _custom_checks().storage_shared_key_check
    assert check.scan_resource_conf({"properties": {"allowSharedKeyAccess": False}}) == CheckResult.PASSED
    assert check.scan_resource_conf({"properties": {"allowSharedKeyAccess": True}}) == CheckResult.FAILED
    assert check.scan_resource_conf({"properties": {}}) == CheckResult.FAILED  # Azure's default is true


def test_custom_key_vault_check_wants_rbac_and_no_access_policies():
    check = _custom_checks().key_vault_rbac_check
    assert check.scan_resource_conf({"properties": {"enableRbacAuthorization": True}}) == CheckResult.PASSED
    assert check.scan_resource_conf({"properties": {"enableRbacAuthorization": False}}) == CheckResult.FAILED
    assert check.scan_resource_conf({"properties": {}}) == CheckResult.FAILED
    with_policies = {"properties": {"enableRbacAuthorization": True, "accessPolicies": [{"objectId": "x"}]}}
    assert check.scan_resource_conf(with_policies) == CheckResult.FAILED


def test_custom_key_vault_recoverable_check_wants_purge_protection_on_by_default():
    check = _custom_checks().key_vault_recoverable_check

    def scan(purge_protection, soft_delete=True):
        properties = {"enableSoftDelete": soft_delete, "enablePurgeProtection": purge_protection}
        return check.scan_resource_conf({"properties": properties})

    def conditional(condition):
        operands = {"condition": condition, "true_value": True, "false_value": None}
        return {"operator": {"type": "conditional", "operands": operands}}

    assert scan(True) == CheckResult.PASSED
    # checkov renders a parameter's default into the condition: true by default passes...
    assert scan(conditional(True)) == CheckResult.PASSED
    # ...a default of false leaves the parameter's name there (checkov renders no falsy default)
    assert scan(conditional("purgeProtection")) == CheckResult.FAILED
    assert scan(None) == CheckResult.FAILED
    assert scan(True, soft_delete=False) == CheckResult.FAILED

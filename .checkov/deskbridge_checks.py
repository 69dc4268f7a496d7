"""Point Desk Bridge's own checkov checks for the Bicep in infra/.

Loaded with ``checkov --framework bicep --external-checks-dir .checkov``.
The built-in checks do not hold us to the two promises the template makes:
no storage account keys, and Key Vault access by Azure RBAC only. Nor can
they read Key Vault purge protection once it is a parameter: off has to be
null (Key Vault refuses false), so the template writes `purgeProtection ?
true : null`, which checkov leaves as an expression with the parameter's
default filled in.
"""

from __future__ import annotations

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


class StorageAccountSharedKeyDisabled(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure storage accounts set allowSharedKeyAccess to false (Entra ID only)",
            id="CKV_DESKBRIDGE_1",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["properties/allowSharedKeyAccess"]
        if conf.get("existing"):
            return CheckResult.UNKNOWN
        properties = conf.get("properties")
        # Azure's default is true: the property has to be there, and false.
        if isinstance(properties, dict) and properties.get("allowSharedKeyAccess") is False:
            return CheckResult.PASSED
        return CheckResult.FAILED


class KeyVaultRbacAuthorization(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure Key Vault uses Azure RBAC (enableRbacAuthorization) and no access policies",
            id="CKV_DESKBRIDGE_2",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.KeyVault/vaults",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["properties/enableRbacAuthorization", "properties/accessPolicies"]
        if conf.get("existing"):
            return CheckResult.UNKNOWN
        properties = conf.get("properties")
        if not isinstance(properties, dict):
            return CheckResult.FAILED
        if properties.get("enableRbacAuthorization") is not True:
            return CheckResult.FAILED
        if properties.get("accessPolicies"):
            return CheckResult.FAILED
        return CheckResult.PASSED


def _on_by_default(value: Any) -> bool:
    """True, or `condition ? true : ...` whose condition checkov rendered as true (a parameter's default)."""
    if value is True:
        return True
    operator = value.get("operator") if isinstance(value, dict) else None
    if not isinstance(operator, dict) or operator.get("type") != "conditional":
        return False
    operands = operator.get("operands") or {}
    return operands.get("condition") is True and operands.get("true_value") is True


class KeyVaultRecoverableByDefault(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure Key Vault soft delete is on and purge protection is on with the default parameters",
            id="CKV_DESKBRIDGE_3",
            categories=(CheckCategories.BACKUP_AND_RECOVERY,),
            supported_resources=("Microsoft.KeyVault/vaults",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["properties/enableSoftDelete", "properties/enablePurgeProtection"]
        if conf.get("existing"):
            return CheckResult.UNKNOWN
        properties = conf.get("properties")
        if not isinstance(properties, dict) or properties.get("enableSoftDelete") is not True:
            return CheckResult.FAILED
        return CheckResult.PASSED if _on_by_default(properties.get("enablePurgeProtection")) else CheckResult.FAILED


storage_shared_key_check = StorageAccountSharedKeyDisabled()
key_vault_rbac_check = KeyVaultRbacAuthorization()
key_vault_recoverable_check = KeyVaultRecoverableByDefault()

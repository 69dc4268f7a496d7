"""Point Desk Bridge's own checkov checks for the Bicep in infra/.

Loaded with ``checkov --framework bicep --external-checks-dir .checkov``.
The built-in checks do not hold us to the two promises the template makes:
no storage account keys, and Key Vault access by Azure RBAC only.
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


storage_shared_key_check = StorageAccountSharedKeyDisabled()
key_vault_rbac_check = KeyVaultRbacAuthorization()

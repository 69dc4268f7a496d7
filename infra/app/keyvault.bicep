// The one Key Vault holding every secret the bridge reads. Access is by
// Azure RBAC only; the managed identity can read secrets, nothing more.
// A secret is written only when its value is passed in: provisioning again
// without the value leaves the secret that is already there untouched.
param name string
param location string
param tags object = {}
@description('principalId of the managed identity that reads the secrets')
param principalId string
@secure()
@description('{ items: [ { name, value } ] }; an item with an empty value is skipped')
param secrets object
@description('expiry written on each secret set by this deployment (ISO 8601)')
param secretsExpireOn string

// Built-in role definition id (the same in every tenant).
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Flex Consumption without a virtual network calls Key Vault from shared outbound addresses; access is by Azure RBAC with the managed identity only
  // checkov:skip=CKV_AZURE_189: same reason: the function app has no private endpoint path to the vault in this template
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for item in secrets.items: if (!empty(item.value)) {
  parent: vault
  name: item.name
  properties: {
    value: item.value
    contentType: 'text/plain'
    attributes: {
      enabled: true
      exp: dateTimeToEpoch(secretsExpireOn)
    }
  }
}]

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri

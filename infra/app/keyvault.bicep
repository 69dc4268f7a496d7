// The one Key Vault holding every secret the bridge reads. Access is by
// Azure RBAC only; the managed identity can read secrets, nothing more.
// A secret is written only when its value is passed in: provisioning again
// without the value leaves the secret that is already there, and its expiry,
// untouched.
param name string
param location string
param tags object = {}
@description('principalId of the managed identity that reads the secrets')
param principalId string
@secure()
@description('{ items: [ { name, value, expiresOn } ] } (expiresOn: ISO 8601); an item with an empty name or value is skipped')
param secrets object
@description('true (production): a deleted vault cannot be purged before its retention ends, so it keeps its name that long; cannot be turned off again once on. false (trial): `azd down --purge` can purge it')
param purgeProtection bool = true
@description('principalId of a person (or pipeline) who may also read and write the secrets (Key Vault Secrets Officer); empty: nobody')
param userPrincipalId string = ''
@allowed(['User', 'ServicePrincipal', 'Group'])
param userPrincipalType string = 'User'
@description('true: public network access off; the function app reaches the vault through a private endpoint (network isolation)')
param privateNetworkOnly bool = false

// Built-in role definition ids (the same in every tenant).
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

// Only the items that name a secret and carry a value become secrets. ARM
// checks a child's name before it looks at a condition, so an item without
// a name must not reach the loop at all (an empty name fails the whole
// deployment with "incorrect segment lengths").
var secretsToSet = filter(secrets.items, item => !empty(item.name) && !empty(item.value))

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: without vnetEnabled, Flex Consumption calls Key Vault from shared outbound addresses (access is by Azure RBAC with the managed identity only); with vnetEnabled the firewall denies by default, which tests/infra/test_infra_checkov.py checks with the switch on
  // checkov:skip=CKV_AZURE_189: same reason: public access is off exactly when vnetEnabled gives the app a private endpoint path; tests/infra/test_infra_checkov.py checks it with the switch on
  // checkov:skip=CKV_AZURE_110: checkov cannot evaluate `purgeProtection ? true : null` (off must be null: Key Vault refuses false); CKV_DESKBRIDGE_3 checks it with the parameter's default
  // checkov:skip=CKV_AZURE_42: same reason as CKV_AZURE_110; CKV_DESKBRIDGE_3 checks soft delete and purge protection together
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
    enablePurgeProtection: purgeProtection ? true : null
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: privateNetworkOnly ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworkOnly ? 'Deny' : 'Allow'
    }
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for item in secretsToSet: {
  parent: vault
  name: item.name
  properties: {
    value: item.value
    contentType: 'text/plain'
    attributes: {
      enabled: true
      exp: dateTimeToEpoch(item.expiresOn)
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

// For `func start` against this vault as the deployer, only when main.bicep's
// grantDeployerDataAccess is on (it passes an empty userPrincipalId otherwise).
resource userSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(vault.id, userPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri

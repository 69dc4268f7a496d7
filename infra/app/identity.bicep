// The one user-assigned managed identity the function app uses for
// everything: storage, Key Vault, Application Insights ingestion, and
// (with usePointClientSecret = false) as a federated credential for Syskit Point.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId

// Network isolation (main.bicep's vnetEnabled): a virtual network the
// function app sends its outbound traffic through, and private endpoints,
// with private DNS zones linked to that network, for the storage account's
// blob, queue and table services and for the vault. The storage account and
// the vault turn their public network access off (privateNetworkOnly), so
// these endpoints are the only way in. Each endpoint, with its zone, comes
// from private-link.bicep.
param vnetName string
param location string
param tags object = {}
param vnetAddressPrefix string
param appSubnetPrefix string
param privateEndpointSubnetPrefix string
@description('resource id of the storage account')
param storageAccountId string
@description('resource id of the Key Vault')
param keyVaultId string

var appSubnetName = 'app'
var privateEndpointSubnetName = 'private-endpoints'
var storageName = last(split(storageAccountId, '/'))
var vaultName = last(split(keyVaultId, '/'))
// One private endpoint per service the app reaches, each with the private DNS
// zone that makes the service's own host name resolve to it inside the network
// (the zones of the Azure public cloud; the storage ones follow its suffix).
var privateLinks = [
  {
    name: 'pe-${storageName}-blob'
    targetId: storageAccountId
    groupId: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
  {
    name: 'pe-${storageName}-queue'
    targetId: storageAccountId
    groupId: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    name: 'pe-${storageName}-table'
    targetId: storageAccountId
    groupId: 'table'
    zone: 'privatelink.table.${environment().suffixes.storage}'
  }
  {
    name: 'pe-${vaultName}-vault'
    targetId: keyVaultId
    groupId: 'vault'
    zone: 'privatelink.vaultcore.azure.net'
  }
]

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        vnetAddressPrefix
      ]
    }
    subnets: [
      {
        // Flex Consumption integrates with a subnet delegated to Microsoft.App/environments.
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
          privateEndpointNetworkPolicies: 'Disabled'
          privateLinkServiceNetworkPolicies: 'Enabled'
        }
      }
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
          privateLinkServiceNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

module privateLink 'private-link.bicep' = [for link in privateLinks: {
  name: 'private-link-${link.groupId}'
  params: {
    name: link.name
    location: location
    tags: tags
    subnetId: '${vnet.id}/subnets/${privateEndpointSubnetName}'
    vnetId: vnet.id
    vnetName: vnetName
    targetId: link.targetId
    groupId: link.groupId
    zoneName: link.zone
  }
}]

output vnetId string = vnet.id
output appSubnetId string = '${vnet.id}/subnets/${appSubnetName}'
output privateEndpointSubnetId string = '${vnet.id}/subnets/${privateEndpointSubnetName}'

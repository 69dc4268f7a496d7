// Flex Consumption plan and the Python function app. The app settings the
// bridge reads come in as one object (built in main.bicep); the Azure
// platform settings (storage by identity, Application Insights by Entra ID)
// are added here.
param planName string
param name string
param location string
param tags object = {}
@description('resource id of the user-assigned managed identity')
param identityId string
@description('client id of the user-assigned managed identity')
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param applicationInsightsConnectionString string
@description('the settings the bridge reads (deskbridge.settings.SETTINGS)')
param bridgeSettings object
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16
@description('subnet (delegated to Microsoft.App/environments) the app sends its outbound traffic through; empty: none (main.bicep\'s vnetEnabled off)')
param virtualNetworkSubnetId string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy for FC1 exists only in some regions and needs zone-redundant storage; enable it per region if you need it
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// siteConfig: Flex Consumption refuses several properties other plans take
// (ARM error 51021: ftpsState, alwaysOn, linuxFxVersion, use32BitWorkerProcess,
// netFrameworkVersion, functionAppScaleLimit, ...); the runtime and scale live
// in functionAppConfig instead. The three set here are accepted on Flex sites.
// FTP is off through the basicPublishingCredentialsPolicies below.
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the service desks and Syskit Point call the function over the internet; there is no private network between them
  // checkov:skip=CKV_AZURE_17: the callers (Jira Cloud, ServiceNow, Syskit Point webhooks) cannot present client certificates
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales instances on demand; always-ready instances cost money and the retry queue covers a cold or lost instance
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not support siteConfig.healthCheckPath; GET /api/health is there for external probes
  // checkov:skip=CKV_AZURE_78: Flex Consumption refuses siteConfig.ftpsState (ARM error 51021); FTP and FTPS are off through the ftp basicPublishingCredentialsPolicies below
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every sites/config resource as the 'web' configuration; this one is 'appsettings', so these do not apply here:
  // checkov:skip=CKV_AZURE_63: HTTP logging belongs to the 'web' config; on Flex Consumption the bridge's logs go to Application Insights
  // checkov:skip=CKV_AZURE_65: detailed error pages belong to the 'web' config; the bridge answers with its own JSON errors
  // checkov:skip=CKV_AZURE_66: failed request tracing belongs to the 'web' config and is not offered on Flex Consumption
  // checkov:skip=CKV_AZURE_80: .NET Framework version belongs to the 'web' config; this is a Python app
  // checkov:skip=CKV_AZURE_88: Azure Files mounts belong to the 'web' config; the bridge keeps its state in tables and queues
  // checkov:skip=CKV_AZURE_13: App Service Authentication would reject the desks' webhooks; callers use function keys and signatures
  // checkov:skip=CKV_AZURE_222: the service desks and Syskit Point call the function over the internet (see the site above)
  parent: functionApp
  name: 'appsettings'
  properties: union(bridgeSettings, {
    AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
    AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
    AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AZURE_CLIENT_ID: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  })
}

// Deployments use Entra ID (azd, az functionapp deploy); no publishing passwords.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
output uri string = 'https://${functionApp.properties.defaultHostName}'

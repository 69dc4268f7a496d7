// Point Desk Bridge: everything `azd up` (or `az deployment sub create`)
// needs in one subscription-scope deployment. It creates the resource group
// and, in it, one managed identity, storage, Key Vault, monitoring, the
// Flex Consumption function app, a workbook and an alert rule.
targetScope = 'subscription'

// ---------------------------------------------------------------- deployment

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd: AZURE_ENV_NAME); part of every resource name')
param environmentName string

// The regions that offer Flex Consumption, as in Microsoft's Flex Consumption
// azd samples (late 2025, without the eastus2euap canary region); azd offers
// only these. `az functionapp list-flexconsumption-locations` has today's list.
@minLength(1)
@description('Region for every resource (azd: AZURE_LOCATION); one that offers Flex Consumption')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create; empty: rg-{environmentName}')
param resourceGroupName string = ''

@description('Key Vault name; empty: derived from the environment (the same on every provision of it). With purge protection a deleted vault keeps its name for 90 days: give another name to deploy the environment again sooner')
param keyVaultName string = ''

@description('Key Vault purge protection. true (production): a deleted vault and its secrets can be recovered for 90 days and nobody can purge them earlier, so its name stays taken; once on it cannot be turned off. false (trial): `azd down --purge` frees the name at once, and a deleted vault is still recoverable until purged')
param keyVaultPurgeProtection bool = true

@description('Object id of the person (or pipeline) running the deployment (azd sets AZURE_PRINCIPAL_ID to the signed-in user); used only when grantDeployerDataAccess is true')
param principalId string = ''

@description('true (a development environment): principalId gets Key Vault Secrets Officer on the vault and the storage data roles, for `func start` against this environment. false (default, and for production): the deployer gets no data access; only the app\'s managed identity reads the secrets, ledger and queues')
param grantDeployerDataAccess bool = false

@description('What principalId is (azd: AZURE_PRINCIPAL_TYPE): User for a person, ServicePrincipal for a pipeline')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

@description('Flex Consumption instance memory (MB)')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Flex Consumption: most instances the app scales out to')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: HTTP requests one instance serves at once (bench/ measured 16 threads safely)')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Storage redundancy')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS'])
param storageSkuName string = 'Standard_LRS'

@description('Days Log Analytics keeps the logs')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('E-mail address that gets the alerts (failed, poisoned or uncertain requests; authorization, setting, secret and unhandled errors); empty: no e-mail')
param alertEmail string = ''

@description('Older spelling of POINT_AUTH_MODE, used when POINT_AUTH_MODE is empty. true: secret; false: federated')
param usePointClientSecret bool = true

@description('POINT_AUTH_MODE: secret (the integration app\'s client secret from Key Vault) or federated (the managed identity as a federated credential of the integration app; add the credential from the outputs first). Empty: USE_POINT_CLIENT_SECRET decides (secret by default)')
@allowed(['', 'secret', 'federated'])
param pointAuthMode string = ''

@description('Expiry written on a secret this deployment writes when its own *_EXPIRES_ON is not given (the bridge warns BRIDGE_SECRET_EXPIRY_WARNING_DAYS before it). A secret is written only in the provision that got its value, so an expiry is never rewritten on its own')
param secretsExpireOn string = dateTimeAdd(utcNow(), 'P1Y')

// ----------------------------------------------------------- network
@description('true: network isolation. The function app sends its outbound traffic through a virtual network; the storage account (blob, queue, table) and the vault are reached through private endpoints with private DNS zones, and their public network access is off. The function app itself stays reachable from the internet (the desks and Syskit Point call it). false (default): no virtual network; storage and vault accept Entra ID callers over their public endpoints')
param vnetEnabled bool = false

@description('Address space of the virtual network (used when vnetEnabled)')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Subnet the function app integrates with, delegated to Microsoft.App/environments (used when vnetEnabled)')
param appSubnetPrefix string = '10.40.1.0/24'

@description('Subnet holding the private endpoints of storage and the vault (used when vnetEnabled)')
param privateEndpointSubnetPrefix string = '10.40.2.0/24'

// ---------------------------------------------------------- secret values
// Optional. A secret is written to Key Vault only when its value is given,
// and a value is given to one provision only: the outputs at the end set
// each value (and its *_EXPIRES_ON) back to empty in the azd environment, so
// provisioning again writes nothing and cannot put an older value back after
// a rotation. Rotate with `azd env set-secret NAME` and `azd provision`.

@secure()
@description('Client secret of the integration app (Entra ID); stored as POINT_CLIENT_SECRET_NAME')
param pointClientSecret string = ''

@secure()
@description('Syskit Point webhook signature key; stored as point-webhook-key unless POINT_WEBHOOK_KEY_SECRET_NAME is given')
param pointWebhookKey string = ''

@secure()
@description('Secret of the Jira admin webhook; stored as jira-webhook-secret unless JIRA_WEBHOOK_SECRET_NAME is given')
param jiraWebhookSecret string = ''

@secure()
@description('API token of the Jira account in JIRA_EMAIL; stored as jira-api-token unless JIRA_API_TOKEN_SECRET_NAME is given')
param jiraApiToken string = ''

@secure()
@description('Password of SERVICENOW_USERNAME; stored as servicenow-password unless SERVICENOW_PASSWORD_SECRET_NAME is given')
param servicenowPassword string = ''

@secure()
@description('ServiceNow OAuth bearer token (instead of a password); stored as servicenow-token unless SERVICENOW_TOKEN_SECRET_NAME is given')
param servicenowToken string = ''

@secure()
@description('Standard Webhooks secret (whsec_...) for /api/servicenow; stored as servicenow-signing-secret unless SERVICENOW_SIGNING_SECRET_NAME is given')
param servicenowSigningSecret string = ''

@secure()
@description('Standard Webhooks secret (whsec_...) for /api/provision; stored as provision-signing-secret unless PROVISION_SIGNING_SECRET_NAME is given')
param provisionSigningSecret string = ''

@secure()
@description('Standard Webhooks secret (whsec_...) signing outcome callbacks; stored as callback-signing-secret unless BRIDGE_CALLBACK_SIGNING_SECRET_NAME is given')
param bridgeCallbackSigningSecret string = ''

// An explicit expiry per secret (ISO 8601, e.g. the Entra client secret's
// real end date 2027-06-30T00:00:00Z), used when that secret is written;
// empty: secretsExpireOn.

@description('Expiry of the pointClientSecret written in this provision')
param pointClientSecretExpiresOn string = ''

@description('Expiry of the pointWebhookKey written in this provision')
param pointWebhookKeyExpiresOn string = ''

@description('Expiry of the jiraWebhookSecret written in this provision')
param jiraWebhookSecretExpiresOn string = ''

@description('Expiry of the jiraApiToken written in this provision')
param jiraApiTokenExpiresOn string = ''

@description('Expiry of the servicenowPassword written in this provision')
param servicenowPasswordExpiresOn string = ''

@description('Expiry of the servicenowToken written in this provision')
param servicenowTokenExpiresOn string = ''

@description('Expiry of the servicenowSigningSecret written in this provision')
param servicenowSigningSecretExpiresOn string = ''

@description('Expiry of the provisionSigningSecret written in this provision')
param provisionSigningSecretExpiresOn string = ''

@description('Expiry of the bridgeCallbackSigningSecret written in this provision')
param bridgeCallbackSigningSecretExpiresOn string = ''

// ------------------------------------------------------------ secret names
// A feature whose secret-name setting is absent is off. A name chooses where
// the value above is written; two comma-separated names during a rotation of
// a secret a sender signs with (the first one is the one written, and the
// bridge accepts either). The outputs keep the names in the azd environment.

@description('POINT_CLIENT_SECRET_NAME: Key Vault secret holding the integration app\'s client secret')
param pointClientSecretName string = 'point-client-secret'

@description('POINT_WEBHOOK_KEY_SECRET_NAME; empty: point-webhook-key when pointWebhookKey is given, else off')
param pointWebhookKeySecretName string = ''

@description('JIRA_WEBHOOK_SECRET_NAME; empty: jira-webhook-secret when jiraWebhookSecret is given, else off')
param jiraWebhookSecretName string = ''

@description('JIRA_API_TOKEN_SECRET_NAME; empty: jira-api-token when jiraApiToken is given, else off')
param jiraApiTokenSecretName string = ''

@description('SERVICENOW_PASSWORD_SECRET_NAME; empty: servicenow-password when servicenowPassword is given, else off')
param servicenowPasswordSecretName string = ''

@description('SERVICENOW_TOKEN_SECRET_NAME; empty: servicenow-token when servicenowToken is given, else off')
param servicenowTokenSecretName string = ''

@description('SERVICENOW_SIGNING_SECRET_NAME; empty: servicenow-signing-secret when servicenowSigningSecret is given, else off')
param servicenowSigningSecretName string = ''

@description('PROVISION_SIGNING_SECRET_NAME; empty: provision-signing-secret when provisionSigningSecret is given, else off')
param provisionSigningSecretName string = ''

@description('BRIDGE_CALLBACK_SIGNING_SECRET_NAME; empty: callback-signing-secret when bridgeCallbackSigningSecret is given, else callbacks go unsigned')
param bridgeCallbackSigningSecretName string = ''

// ------------------------------------------------------- bridge settings
// One parameter per setting in deskbridge/settings.py (SETTINGS). An empty
// value means the bridge's own default.

@description('POINT_URL: Syskit Point base URL, e.g. https://contoso.point.syskit.com')
@minLength(1)
param pointUrl string

@description('POINT_TENANT_ID: Directory (tenant) ID of the integration app (empty: the tenant of this subscription)')
param pointTenantId string = ''

@description('POINT_API_APP_ID: Application (client) ID of the Syskit Point API app; the scope is {id}/.default')
@minLength(1)
param pointApiAppId string

@description('POINT_CLIENT_ID: Application (client) ID of the integration app')
@minLength(1)
param pointClientId string

@description('POINT_TEMPLATE_IDS: allowed template ids, comma-separated; empty allows any')
param pointTemplateIds string = ''

@description('POINT_DEFAULT_TEMPLATE_ID: template used when a desk payload names none')
param pointDefaultTemplateId string = ''

@description('POINT_DEFAULT_WORKSPACE_TYPE: teams, groups, sites or yammer, when a payload names none (empty: teams)')
param pointDefaultWorkspaceType string = ''

@description('POINT_CONNECT_TIMEOUT_SECONDS: connect timeout of each Syskit Point call (empty: 3.05)')
param pointConnectTimeoutSeconds string = ''

@description('POINT_READ_TIMEOUT_SECONDS: read timeout of each Syskit Point call; a POST that times out is recorded as uncertain (empty: 6)')
param pointReadTimeoutSeconds string = ''

@description('POINT_RETRY_BUDGET_SECONDS: total time an approval may spend retrying Syskit Point before it is queued (empty: 7)')
param pointRetryBudgetSeconds string = ''

@description('BRIDGE_SECRET_TTL_SECONDS: how long a secret read from Key Vault is cached in process (empty: 3600)')
param bridgeSecretTtlSeconds string = ''

@description('BRIDGE_SECRET_EXPIRY_WARNING_DAYS: warn when a secret expires within this many days (empty: 30)')
param bridgeSecretExpiryWarningDays string = ''

@description('BRIDGE_SECRET_STALE_SECONDS: while Key Vault is unreachable, keep using a secret read this long ago at most (empty: 86400)')
param bridgeSecretStaleSeconds string = ''

@description('BRIDGE_LEDGER_TABLE: Azure Table holding one record per ticket')
param bridgeLedgerTable string = 'provisioningrequests'

@description('BRIDGE_DELIVERIES_TABLE: Azure Table remembering webhook delivery ids, to drop replays')
param bridgeDeliveriesTable string = 'deliveries'

@description('BRIDGE_RETRY_QUEUE: queue of approvals waiting for another attempt')
param bridgeRetryQueue string = 'provisioning-retries'

@description('BRIDGE_RETRY_POISON_QUEUE: where approvals go after the last attempt; keep it {retry queue}-poison')
param bridgeRetryPoisonQueue string = 'provisioning-retries-poison'

@description('BRIDGE_DESK_QUEUE: queue of outcomes to write back to the desks')
param bridgeDeskQueue string = 'desk-updates'

@description('BRIDGE_DESK_POISON_QUEUE: where desk updates go after the last attempt; keep it {desk queue}-poison')
param bridgeDeskPoisonQueue string = 'desk-updates-poison'

@description('BRIDGE_RETRY_SCHEDULE: seconds between attempts; the last one repeats (empty: 60,300,1800,7200,21600)')
param bridgeRetrySchedule string = ''

@description('BRIDGE_RETRY_MAX_AGE_SECONDS: keep retrying until a request is at least this old (empty: 86400)')
param bridgeRetryMaxAgeSeconds string = ''

@description('BRIDGE_RECONCILE_SCHEDULE: NCRONTAB schedule of the reconciler (a timer binding expression: never empty)')
param bridgeReconcileSchedule string = '0 */5 * * * *'

@description('BRIDGE_QUEUE_GRACE_SECONDS: a retry or desk update this long overdue is queued again by the reconciler (empty: 600)')
param bridgeQueueGraceSeconds string = ''

@description('BRIDGE_DELIVERY_RETENTION_SECONDS: how long delivery ids are kept to drop replays (empty: 604800)')
param bridgeDeliveryRetentionSeconds string = ''

@description('BRIDGE_UNCERTAIN_RESEND_AFTER_SECONDS: re-send an uncertain request when no Syskit Point event came within this many seconds (empty: off)')
param bridgeUncertainResendAfterSeconds string = ''

@description('BRIDGE_RECORD_RETENTION_DAYS: days a settled request keeps the people in its body (empty: 90)')
param bridgeRecordRetentionDays string = ''

@description('BRIDGE_OUTCOME_POLL_AFTER_SECONDS: ask Syskit Point for the status of a request when no event came for this many seconds, then at a growing interval (empty: 900)')
param bridgeOutcomePollAfterSeconds string = ''

@description('BRIDGE_OUTCOME_OVERDUE_SECONDS: a request with no outcome this long after it was sent is logged as overdue once and noted on its ticket (empty: 86400)')
param bridgeOutcomeOverdueSeconds string = ''

@description('BRIDGE_MAX_BODY_BYTES: largest request body accepted (empty: 262144)')
param bridgeMaxBodyBytes string = ''

@description('BRIDGE_MAX_OWNERS: most owners one request may name (empty: 100)')
param bridgeMaxOwners string = ''

@description('BRIDGE_MAX_MEMBERS: most members one request may name (empty: 1000)')
param bridgeMaxMembers string = ''

@description('BRIDGE_CALLBACK_HOSTS: callback hosts allowed, comma-separated exact names and *.suffix (empty: any public host)')
param bridgeCallbackHosts string = ''

@description('BRIDGE_CALLBACK_ALLOW_LOOPBACK: true lets callbacks reach loopback; local runs only, leave empty in Azure (empty: false)')
param bridgeCallbackAllowLoopback string = ''

@description('PROVISION_REQUIRE_SIGNATURE: true or false; default: true when a signing secret is configured')
param provisionRequireSignature string = ''

@description('PROVISION_DESK_WRITEBACK: desks a /api/provision record may write to: jira, servicenow or both (empty: none)')
param provisionDeskWriteback string = ''

@description('JIRA_APPROVED_STATUS: status name that means approved (empty: Approved)')
param jiraApprovedStatus string = ''

@description('JIRA_POST_FUNCTION_MATCH: to_status or transition_name: what a workflow post function must name to approve (empty: to_status)')
param jiraPostFunctionMatch string = ''

@description('JIRA_FIELD_DISPLAY_NAME: field holding the workspace name (empty: summary)')
param jiraFieldDisplayName string = ''

@description('JIRA_FIELD_DESCRIPTION: field holding the workspace description (empty: summary)')
param jiraFieldDescription string = ''

@description('JIRA_FIELD_OWNERS: user-picker field of owners; empty: the reporter')
param jiraFieldOwners string = ''

@description('JIRA_FIELD_MEMBERS: user-picker field of members; empty: none')
param jiraFieldMembers string = ''

@description('JIRA_FIELD_WORKSPACE_TYPE: select or text field naming the workspace type')
param jiraFieldWorkspaceType string = ''

@description('JIRA_FIELD_PRIVACY: select, checkbox or text field: private or public')
param jiraFieldPrivacy string = ''

@description('JIRA_FIELD_TEMPLATE: select, number or text field holding the template id')
param jiraFieldTemplate string = ''

@description('JIRA_URL: Jira site, e.g. https://contoso.atlassian.net; enables e-mail lookup and write-back')
param jiraUrl string = ''

@description('JIRA_EMAIL: account whose API token the bridge uses')
param jiraEmail string = ''

@description('JIRA_REQUIRE_SIGNATURE: true or false; default: true when a webhook secret is configured')
param jiraRequireSignature string = ''

@description('JIRA_INTERNAL_NOTE: write outcomes as Jira Service Management internal notes (false: plain comments) (empty: true)')
param jiraInternalNote string = ''

@description('JIRA_TRANSITION_COMPLETED: transition to apply when provisioning completes (by name)')
param jiraTransitionCompleted string = ''

@description('JIRA_TRANSITION_FAILED: transition to apply when provisioning fails (by name)')
param jiraTransitionFailed string = ''

@description('JIRA_PROJECT_KEY: project key doctor checks permissions and workflow transitions in (empty: token only)')
param jiraProjectKey string = ''

@description('JIRA_PROJECT_KEYS: Jira projects the bridge may write to, comma-separated (empty: any)')
param jiraProjectKeys string = ''

@description('SERVICENOW_URL: instance, e.g. https://contoso.service-now.com; enables write-back')
param servicenowUrl string = ''

@description('SERVICENOW_USERNAME: integration user for write-back (basic auth)')
param servicenowUsername string = ''

@description('SERVICENOW_REQUIRE_SIGNATURE: true or false; default: true when a signing secret is configured')
param servicenowRequireSignature string = ''

@description('SERVICENOW_VARIABLE_DISPLAY_NAME: catalog variable holding the workspace name (empty: site_name)')
param servicenowVariableDisplayName string = ''

@description('SERVICENOW_VARIABLE_DESCRIPTION: catalog variable holding the description (empty: site_description)')
param servicenowVariableDescription string = ''

@description('SERVICENOW_VARIABLE_WORKSPACE_TYPE: catalog variable holding the workspace type (empty: workspace_type)')
param servicenowVariableWorkspaceType string = ''

@description('SERVICENOW_VARIABLE_PRIVACY: catalog variable holding privacy (true/false) (empty: is_private)')
param servicenowVariablePrivacy string = ''

@description('SERVICENOW_VARIABLE_TEMPLATE: catalog variable holding the template id (empty: template_id)')
param servicenowVariableTemplate string = ''

@description('SERVICENOW_STATE_COMPLETED: sc_req_item state to set when provisioning completes (e.g. 3); empty: leave it')
param servicenowStateCompleted string = ''

@description('SERVICENOW_STATE_FAILED: sc_req_item state to set when provisioning fails (e.g. 4); empty: leave it')
param servicenowStateFailed string = ''

// ---------------------------------------------------------------- names

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var deploymentContainerName = 'deployment-package'
// The deployer's data roles are opt-in (grantDeployerDataAccess): an empty
// principal id tells the storage and vault modules to grant nothing.
var deployerPrincipalId = grantDeployerDataAccess ? principalId : ''

// ------------------------------------------------------------- secrets
// Each feature's secret names as the bridge gets them: the names given
// (comma-separated during rotation), each trimmed; else the default name
// when the secret's value is given; else none, and the feature is off.

// POINT_AUTH_MODE when given, else the older USE_POINT_CLIENT_SECRET.
var effectivePointAuthMode = empty(pointAuthMode) ? (usePointClientSecret ? 'secret' : 'federated') : pointAuthMode
var useClientSecret = effectivePointAuthMode == 'secret'

var pointClientSecretNameList = [for name in split(pointClientSecretName, ','): trim(name)]
var pointClientSecretNames = useClientSecret ? (empty(trim(pointClientSecretName)) ? ['point-client-secret'] : pointClientSecretNameList) : []
var pointWebhookKeyNameList = [for name in split(pointWebhookKeySecretName, ','): trim(name)]
var pointWebhookKeyNames = empty(trim(pointWebhookKeySecretName)) ? (empty(pointWebhookKey) ? [] : ['point-webhook-key']) : pointWebhookKeyNameList
var jiraWebhookSecretNameList = [for name in split(jiraWebhookSecretName, ','): trim(name)]
var jiraWebhookSecretNames = empty(trim(jiraWebhookSecretName)) ? (empty(jiraWebhookSecret) ? [] : ['jira-webhook-secret']) : jiraWebhookSecretNameList
var jiraApiTokenNameList = [for name in split(jiraApiTokenSecretName, ','): trim(name)]
var jiraApiTokenNames = empty(trim(jiraApiTokenSecretName)) ? (empty(jiraApiToken) ? [] : ['jira-api-token']) : jiraApiTokenNameList
var servicenowPasswordNameList = [for name in split(servicenowPasswordSecretName, ','): trim(name)]
var servicenowPasswordNames = empty(trim(servicenowPasswordSecretName)) ? (empty(servicenowPassword) ? [] : ['servicenow-password']) : servicenowPasswordNameList
var servicenowTokenNameList = [for name in split(servicenowTokenSecretName, ','): trim(name)]
var servicenowTokenNames = empty(trim(servicenowTokenSecretName)) ? (empty(servicenowToken) ? [] : ['servicenow-token']) : servicenowTokenNameList
var servicenowSigningSecretNameList = [for name in split(servicenowSigningSecretName, ','): trim(name)]
var servicenowSigningSecretNames = empty(trim(servicenowSigningSecretName)) ? (empty(servicenowSigningSecret) ? [] : ['servicenow-signing-secret']) : servicenowSigningSecretNameList
var provisionSigningSecretNameList = [for name in split(provisionSigningSecretName, ','): trim(name)]
var provisionSigningSecretNames = empty(trim(provisionSigningSecretName)) ? (empty(provisionSigningSecret) ? [] : ['provision-signing-secret']) : provisionSigningSecretNameList
var callbackSigningSecretNameList = [for name in split(bridgeCallbackSigningSecretName, ','): trim(name)]
var callbackSigningSecretNames = empty(trim(bridgeCallbackSigningSecretName)) ? (empty(bridgeCallbackSigningSecret) ? [] : ['callback-signing-secret']) : callbackSigningSecretNameList

// Only the setting of a feature that is on is set.
var secretNameSettings = union(
  empty(pointClientSecretNames) ? {} : { POINT_CLIENT_SECRET_NAME: join(pointClientSecretNames, ',') },
  empty(pointWebhookKeyNames) ? {} : { POINT_WEBHOOK_KEY_SECRET_NAME: join(pointWebhookKeyNames, ',') },
  empty(jiraWebhookSecretNames) ? {} : { JIRA_WEBHOOK_SECRET_NAME: join(jiraWebhookSecretNames, ',') },
  empty(jiraApiTokenNames) ? {} : { JIRA_API_TOKEN_SECRET_NAME: join(jiraApiTokenNames, ',') },
  empty(servicenowPasswordNames) ? {} : { SERVICENOW_PASSWORD_SECRET_NAME: join(servicenowPasswordNames, ',') },
  empty(servicenowTokenNames) ? {} : { SERVICENOW_TOKEN_SECRET_NAME: join(servicenowTokenNames, ',') },
  empty(servicenowSigningSecretNames) ? {} : { SERVICENOW_SIGNING_SECRET_NAME: join(servicenowSigningSecretNames, ',') },
  empty(provisionSigningSecretNames) ? {} : { PROVISION_SIGNING_SECRET_NAME: join(provisionSigningSecretNames, ',') },
  empty(callbackSigningSecretNames) ? {} : { BRIDGE_CALLBACK_SIGNING_SECRET_NAME: join(callbackSigningSecretNames, ',') }
)

// Key Vault allows 1 to 127 letters, digits and hyphens in a secret name.
// uriComponent() leaves letters, digits and -_.~ (and, in some encoders,
// !*'()) as they are; the contains() checks take those out again.
var secretNameList = flatten([
  pointClientSecretNames
  pointWebhookKeyNames
  jiraWebhookSecretNames
  jiraApiTokenNames
  servicenowPasswordNames
  servicenowTokenNames
  servicenowSigningSecretNames
  provisionSigningSecretNames
  callbackSigningSecretNames
])
var invalidSecretNames = filter(secretNameList, name => length(name) < 1 || length(name) > 127 || uriComponent(name) != name || contains(name, '_') || contains(name, '.') || contains(name, '~') || contains(name, '!') || contains(name, '*') || contains(name, '\'') || contains(name, '(') || contains(name, ')'))

// The secret a feature writes from its value: the first of its names, with
// its own expiry when one is given.
var secretsToWrite = [
  {
    name: empty(pointClientSecretNames) ? '' : first(pointClientSecretNames)
    value: useClientSecret ? pointClientSecret : ''
    expiresOn: empty(pointClientSecretExpiresOn) ? secretsExpireOn : pointClientSecretExpiresOn
  }
  {
    name: empty(pointWebhookKeyNames) ? '' : first(pointWebhookKeyNames)
    value: pointWebhookKey
    expiresOn: empty(pointWebhookKeyExpiresOn) ? secretsExpireOn : pointWebhookKeyExpiresOn
  }
  {
    name: empty(jiraWebhookSecretNames) ? '' : first(jiraWebhookSecretNames)
    value: jiraWebhookSecret
    expiresOn: empty(jiraWebhookSecretExpiresOn) ? secretsExpireOn : jiraWebhookSecretExpiresOn
  }
  {
    name: empty(jiraApiTokenNames) ? '' : first(jiraApiTokenNames)
    value: jiraApiToken
    expiresOn: empty(jiraApiTokenExpiresOn) ? secretsExpireOn : jiraApiTokenExpiresOn
  }
  {
    name: empty(servicenowPasswordNames) ? '' : first(servicenowPasswordNames)
    value: servicenowPassword
    expiresOn: empty(servicenowPasswordExpiresOn) ? secretsExpireOn : servicenowPasswordExpiresOn
  }
  {
    name: empty(servicenowTokenNames) ? '' : first(servicenowTokenNames)
    value: servicenowToken
    expiresOn: empty(servicenowTokenExpiresOn) ? secretsExpireOn : servicenowTokenExpiresOn
  }
  {
    name: empty(servicenowSigningSecretNames) ? '' : first(servicenowSigningSecretNames)
    value: servicenowSigningSecret
    expiresOn: empty(servicenowSigningSecretExpiresOn) ? secretsExpireOn : servicenowSigningSecretExpiresOn
  }
  {
    name: empty(provisionSigningSecretNames) ? '' : first(provisionSigningSecretNames)
    value: provisionSigningSecret
    expiresOn: empty(provisionSigningSecretExpiresOn) ? secretsExpireOn : provisionSigningSecretExpiresOn
  }
  {
    name: empty(callbackSigningSecretNames) ? '' : first(callbackSigningSecretNames)
    value: bridgeCallbackSigningSecret
    expiresOn: empty(bridgeCallbackSigningSecretExpiresOn) ? secretsExpireOn : bridgeCallbackSigningSecretExpiresOn
  }
]

// A name outside Key Vault's rule stops the deployment before anything is
// created, with the names in its message: looking up a property this object
// does not have fails as "The language expression property '<message>'
// doesn't exist". (Bicep's fail() would say it plainly, but neither the
// pycep that checkov reads infra/ with nor older Bicep CLIs know it.)
var secretNameCheck = {
  valid: secretsToWrite
}
var checkedSecrets = secretNameCheck[empty(invalidSecretNames) ? 'valid' : 'Key Vault secret names may only hold letters, digits and hyphens, 1 to 127 of them; check the *_SECRET_NAME values: [${join(invalidSecretNames, '] [')}]']

// ------------------------------------------------------------ resources

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
    principalId: identity.outputs.principalId
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    tableNames: [
      bridgeLedgerTable
      bridgeDeliveriesTable
    ]
    queueNames: [
      bridgeRetryQueue
      bridgeRetryPoisonQueue
      bridgeDeskQueue
      bridgeDeskPoisonQueue
    ]
    principalId: identity.outputs.principalId
    userPrincipalId: deployerPrincipalId
    userPrincipalType: principalType
    privateNetworkOnly: vnetEnabled
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: !empty(keyVaultName) ? keyVaultName : '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    secrets: {
      items: checkedSecrets
    }
    purgeProtection: keyVaultPurgeProtection
    userPrincipalId: deployerPrincipalId
    userPrincipalType: principalType
    privateNetworkOnly: vnetEnabled
  }
}

module network 'app/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    vnetName: '${abbrs.networkVirtualNetworks}${resourceToken}'
    location: location
    tags: tags
    vnetAddressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    storageAccountId: storage.outputs.id
    keyVaultId: keyVault.outputs.id
  }
}

// Every setting the bridge reads (deskbridge.settings.SETTINGS), except the
// secret names, which are set above only for the features that are on.
var bridgeSettings = union(secretNameSettings, {
  KEY_VAULT_URL: keyVault.outputs.uri
  POINT_AUTH_MODE: effectivePointAuthMode
  POINT_URL: pointUrl
  POINT_TENANT_ID: empty(pointTenantId) ? tenant().tenantId : pointTenantId
  POINT_API_APP_ID: pointApiAppId
  POINT_CLIENT_ID: pointClientId
  POINT_TEMPLATE_IDS: pointTemplateIds
  POINT_DEFAULT_TEMPLATE_ID: pointDefaultTemplateId
  POINT_DEFAULT_WORKSPACE_TYPE: pointDefaultWorkspaceType
  POINT_CONNECT_TIMEOUT_SECONDS: pointConnectTimeoutSeconds
  POINT_READ_TIMEOUT_SECONDS: pointReadTimeoutSeconds
  POINT_RETRY_BUDGET_SECONDS: pointRetryBudgetSeconds
  BRIDGE_SECRET_TTL_SECONDS: bridgeSecretTtlSeconds
  BRIDGE_SECRET_EXPIRY_WARNING_DAYS: bridgeSecretExpiryWarningDays
  BRIDGE_SECRET_STALE_SECONDS: bridgeSecretStaleSeconds
  BRIDGE_LEDGER_TABLE: bridgeLedgerTable
  BRIDGE_DELIVERIES_TABLE: bridgeDeliveriesTable
  BRIDGE_RETRY_QUEUE: bridgeRetryQueue
  BRIDGE_RETRY_POISON_QUEUE: bridgeRetryPoisonQueue
  BRIDGE_DESK_QUEUE: bridgeDeskQueue
  BRIDGE_DESK_POISON_QUEUE: bridgeDeskPoisonQueue
  BRIDGE_RETRY_SCHEDULE: bridgeRetrySchedule
  BRIDGE_RETRY_MAX_AGE_SECONDS: bridgeRetryMaxAgeSeconds
  BRIDGE_RECONCILE_SCHEDULE: bridgeReconcileSchedule
  BRIDGE_QUEUE_GRACE_SECONDS: bridgeQueueGraceSeconds
  BRIDGE_DELIVERY_RETENTION_SECONDS: bridgeDeliveryRetentionSeconds
  BRIDGE_UNCERTAIN_RESEND_AFTER_SECONDS: bridgeUncertainResendAfterSeconds
  BRIDGE_RECORD_RETENTION_DAYS: bridgeRecordRetentionDays
  BRIDGE_OUTCOME_POLL_AFTER_SECONDS: bridgeOutcomePollAfterSeconds
  BRIDGE_OUTCOME_OVERDUE_SECONDS: bridgeOutcomeOverdueSeconds
  BRIDGE_MAX_BODY_BYTES: bridgeMaxBodyBytes
  BRIDGE_MAX_OWNERS: bridgeMaxOwners
  BRIDGE_MAX_MEMBERS: bridgeMaxMembers
  BRIDGE_CALLBACK_HOSTS: bridgeCallbackHosts
  BRIDGE_CALLBACK_ALLOW_LOOPBACK: bridgeCallbackAllowLoopback
  PROVISION_REQUIRE_SIGNATURE: provisionRequireSignature
  PROVISION_DESK_WRITEBACK: provisionDeskWriteback
  JIRA_APPROVED_STATUS: jiraApprovedStatus
  JIRA_POST_FUNCTION_MATCH: jiraPostFunctionMatch
  JIRA_FIELD_DISPLAY_NAME: jiraFieldDisplayName
  JIRA_FIELD_DESCRIPTION: jiraFieldDescription
  JIRA_FIELD_OWNERS: jiraFieldOwners
  JIRA_FIELD_MEMBERS: jiraFieldMembers
  JIRA_FIELD_WORKSPACE_TYPE: jiraFieldWorkspaceType
  JIRA_FIELD_PRIVACY: jiraFieldPrivacy
  JIRA_FIELD_TEMPLATE: jiraFieldTemplate
  JIRA_URL: jiraUrl
  JIRA_EMAIL: jiraEmail
  JIRA_REQUIRE_SIGNATURE: jiraRequireSignature
  JIRA_INTERNAL_NOTE: jiraInternalNote
  JIRA_TRANSITION_COMPLETED: jiraTransitionCompleted
  JIRA_TRANSITION_FAILED: jiraTransitionFailed
  JIRA_PROJECT_KEY: jiraProjectKey
  JIRA_PROJECT_KEYS: jiraProjectKeys
  SERVICENOW_URL: servicenowUrl
  SERVICENOW_USERNAME: servicenowUsername
  SERVICENOW_REQUIRE_SIGNATURE: servicenowRequireSignature
  SERVICENOW_VARIABLE_DISPLAY_NAME: servicenowVariableDisplayName
  SERVICENOW_VARIABLE_DESCRIPTION: servicenowVariableDescription
  SERVICENOW_VARIABLE_WORKSPACE_TYPE: servicenowVariableWorkspaceType
  SERVICENOW_VARIABLE_PRIVACY: servicenowVariablePrivacy
  SERVICENOW_VARIABLE_TEMPLATE: servicenowVariableTemplate
  SERVICENOW_STATE_COMPLETED: servicenowStateCompleted
  SERVICENOW_STATE_FAILED: servicenowStateFailed
})

module functionApp 'app/function.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    planName: '${abbrs.webServerFarms}${resourceToken}'
    name: '${abbrs.webSitesFunctions}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    bridgeSettings: bridgeSettings
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''
  }
}

module observability 'app/observability.bicep' = {
  name: 'observability'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    queueServiceId: storage.outputs.queueServiceId
    functionAppId: functionApp.outputs.id
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    alertRuleName: '${abbrs.insightsScheduledQueryRules}attention-${resourceToken}'
    problemsAlertRuleName: '${abbrs.insightsScheduledQueryRules}problems-${resourceToken}'
    alertEmail: alertEmail
  }
}

// -------------------------------------------------------------- outputs
// azd writes these into .azure/<env>/.env.

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_URL string = functionApp.outputs.uri
output POINT_EVENTS_URL string = '${functionApp.outputs.uri}/api/point/events'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
// For POINT_AUTH_MODE=federated: add a federated credential with these
// values to the integration app (Certificates & secrets > Federated credentials).
output FEDERATED_CREDENTIAL_ISSUER string = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
output FEDERATED_CREDENTIAL_SUBJECT string = identity.outputs.principalId
output FEDERATED_CREDENTIAL_AUDIENCE string = 'api://AzureADTokenExchange'

// Settings the template works out, under the names the bridge reads, so that
// the azd environment shows what the app runs with. (Not POINT_AUTH_MODE: it
// would then hide a later USE_POINT_CLIENT_SECRET.)
output KEY_VAULT_URL string = keyVault.outputs.uri
output POINT_TENANT_ID string = empty(pointTenantId) ? tenant().tenantId : pointTenantId

// ------------------------------------------------- secrets: once per value
// azd writes every output into .azure/<env>/.env, over what was there. These
// set each secret value and its *_EXPIRES_ON back to empty, so the next
// provision gets no value and writes nothing: a secret is written by the one
// provision after `azd env set-secret NAME`, never again, and a value
// rotated since cannot be rolled back by a later provision. The secret names
// in effect are kept, so that a feature turned on by giving its value stays
// on once the value is gone. The values written here are always empty or a
// secret's name, never a secret (hence the linter's disable lines).
#disable-next-line outputs-should-not-contain-secrets
output POINT_CLIENT_SECRET string = ''
output POINT_CLIENT_SECRET_EXPIRES_ON string = ''
output POINT_CLIENT_SECRET_NAME string = join(pointClientSecretNames, ',')
#disable-next-line outputs-should-not-contain-secrets
output POINT_WEBHOOK_KEY string = ''
output POINT_WEBHOOK_KEY_EXPIRES_ON string = ''
output POINT_WEBHOOK_KEY_SECRET_NAME string = join(pointWebhookKeyNames, ',')
#disable-next-line outputs-should-not-contain-secrets
output JIRA_WEBHOOK_SECRET string = ''
output JIRA_WEBHOOK_SECRET_EXPIRES_ON string = ''
output JIRA_WEBHOOK_SECRET_NAME string = join(jiraWebhookSecretNames, ',')
#disable-next-line outputs-should-not-contain-secrets
output JIRA_API_TOKEN string = ''
output JIRA_API_TOKEN_EXPIRES_ON string = ''
output JIRA_API_TOKEN_SECRET_NAME string = join(jiraApiTokenNames, ',')
#disable-next-line outputs-should-not-contain-secrets
output SERVICENOW_PASSWORD string = ''
#disable-next-line outputs-should-not-contain-secrets
output SERVICENOW_PASSWORD_EXPIRES_ON string = ''
#disable-next-line outputs-should-not-contain-secrets
output SERVICENOW_PASSWORD_SECRET_NAME string = join(servicenowPasswordNames, ',')
#disable-next-line outputs-should-not-contain-secrets
output SERVICENOW_TOKEN string = ''
output SERVICENOW_TOKEN_EXPIRES_ON string = ''
output SERVICENOW_TOKEN_SECRET_NAME string = join(servicenowTokenNames, ',')
#disable-next-line outputs-should-not-contain-secrets
output SERVICENOW_SIGNING_SECRET string = ''
output SERVICENOW_SIGNING_SECRET_EXPIRES_ON string = ''
output SERVICENOW_SIGNING_SECRET_NAME string = join(servicenowSigningSecretNames, ',')
#disable-next-line outputs-should-not-contain-secrets
output PROVISION_SIGNING_SECRET string = ''
output PROVISION_SIGNING_SECRET_EXPIRES_ON string = ''
output PROVISION_SIGNING_SECRET_NAME string = join(provisionSigningSecretNames, ',')
#disable-next-line outputs-should-not-contain-secrets
output BRIDGE_CALLBACK_SIGNING_SECRET string = ''
output BRIDGE_CALLBACK_SIGNING_SECRET_EXPIRES_ON string = ''
output BRIDGE_CALLBACK_SIGNING_SECRET_NAME string = join(callbackSigningSecretNames, ',')

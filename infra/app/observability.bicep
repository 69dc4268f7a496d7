// What people watch in the portal: the workbook, and an e-mail when a
// request fails, is poisoned, or may not have reached Syskit Point, and
// (a second rule) when something stops every request.
param location string
param tags object = {}
param applicationInsightsId string
param queueServiceId string
param actionGroupName string
param alertRuleName string
param problemsAlertRuleName string
@description('where alerts go; empty: the action group has no receivers')
param alertEmail string = ''
param workbookDisplayName string = 'Point Desk Bridge'
@description('the function app: the workbook links its operator functions (admin_list, admin_replay, ...)')
param functionAppId string = ''

// The two filters the alert rules run, and the workbook's two tables with
// them. Each structured line ends its first line with the JSON dimensions
// (deskbridge/telemetry.py); an exception's traceback follows on the next
// lines, so the pattern stops at the line break instead of at the end.
//
// Requests that need a look: one row per request (a request that runs out
// of retries logs "failed" and then "poisoned"), or per expiring secret.
var requestsQuery = '''
traces
| extend d = parse_json(extract(@'(\{"bridge_event"[^\n]*\})', 1, message))
| extend event = tostring(d.bridge_event), outcome = tostring(d.outcome), source = tostring(d.source), ticket = tostring(d.ticket)
| where event != "point_call" and (event in ("poisoned", "failed", "uncertain", "secret_expiry") or outcome in ("failed", "uncertain", "point_failed"))
| summarize arg_max(timestamp, event, outcome, message, operation_Id), events = make_set(event) by source, ticket, secret = tostring(d.secret_name)
'''

// Problems that stop every request until someone fixes them: Syskit Point
// refusing the bridge (401/403: consent revoked, secret wrong), a missing or
// malformed setting, an unreadable secret, Azure Storage refusing or failing
// the bridge, an unhandled exception; and a request with no word from
// Syskit Point for BRIDGE_OUTCOME_OVERDUE_SECONDS (logged once each: Syskit
// Point may be stuck, or lost the request). One row
// per kind of problem, with how often it happened and the latest line.
var problemsQuery = '''
traces
| extend d = parse_json(extract(@'(\{"bridge_event"[^\n]*\})', 1, message))
| extend event = tostring(d.bridge_event)
| where event in ("authorization", "config", "secret", "storage", "error", "overdue")
| summarize arg_max(timestamp, message, operation_Id), occurrences = count() by event, setting = tostring(d.setting), point_status = tostring(d.point_status)
'''

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(applicationInsightsId, 'point-desk-bridge-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: workbookDisplayName
    category: 'workbook'
    sourceId: applicationInsightsId
    serializedData: replace(replace(replace(loadTextContent('workbook.json'), '__APP_INSIGHTS_ID__', applicationInsightsId), '__QUEUE_SERVICE_ID__', queueServiceId), '__FUNCTION_APP_ID__', functionAppId)
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'deskbridge'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource attentionAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: alertRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Point Desk Bridge: failed, poisoned or uncertain requests'
    description: 'A provisioning request failed, was poisoned after its last retry, or may not have reached Syskit Point, or a secret expires soon. Open the Point Desk Bridge workbook for the tickets.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: requestsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// Its own rule, one severity higher: until this is fixed every approval
// waits on the retry queue and fails a day later.
resource problemsAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: problemsAlertRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Point Desk Bridge: cannot work (authorization, settings, secrets, storage, errors, overdue)'
    description: 'Syskit Point refused the bridge (401/403: admin consent or client secret), a setting is missing or malformed, a Key Vault secret cannot be read, an unhandled exception happened, or a request has had no outcome from Syskit Point for BRIDGE_OUTCOME_OVERDUE_SECONDS. Every approval waits until this is fixed. Open the Point Desk Bridge workbook.'
    severity: 1
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: problemsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output workbookId string = workbook.id
output actionGroupId string = actionGroup.id
output alertRuleId string = attentionAlert.id
output problemsAlertRuleId string = problemsAlert.id

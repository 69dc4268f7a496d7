// What people watch in the portal: the workbook, and an e-mail when a
// request fails, is poisoned, or may not have reached Syskit Point.
param location string
param tags object = {}
param applicationInsightsId string
param queueServiceId string
param actionGroupName string
param alertRuleName string
@description('where alerts go; empty: the action group has no receivers')
param alertEmail string = ''
param workbookDisplayName string = 'Point Desk Bridge'

// The same filter as the workbook's "requests that need a look".
var attentionQuery = '''
traces
| extend d = parse_json(extract(@'(\{"bridge_event".*\})\s*$', 1, message))
| extend event = tostring(d.bridge_event), outcome = tostring(d.outcome)
| where event != "point_call" and (event in ("poisoned", "failed", "uncertain", "secret_expiry") or outcome in ("failed", "uncertain", "point_failed"))
| project timestamp, event, source = tostring(d.source), ticket = tostring(d.ticket), outcome, secret = tostring(d.secret_name)
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
    serializedData: replace(replace(loadTextContent('workbook.json'), '__APP_INSIGHTS_ID__', applicationInsightsId), '__QUEUE_SERVICE_ID__', queueServiceId)
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
    description: 'A provisioning request failed, was poisoned after its last retry, or may not have reached Syskit Point. Open the Point Desk Bridge workbook for the tickets.'
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
          query: attentionQuery
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

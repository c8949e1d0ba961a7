# A signed webhook of yours, for tenant and service account events.
resource "intelliauth_audit_stream" "siem" {
  name     = "siem"
  kind     = "https"
  endpoint = "https://siem.example.com/intelliauth"
  format   = "cloudevents"
  actions  = ["tenant.*", "service_account.*"]
}

# Every event to Splunk's HTTP Event Collector.
resource "intelliauth_audit_stream" "splunk" {
  name       = "splunk"
  kind       = "splunk_hec"
  endpoint   = "https://splunk.example.com:8088/services/collector/event"
  credential = var.splunk_hec_token
}

variable "splunk_hec_token" {
  type      = string
  sensitive = true
}

# The secret that signs the webhook's requests, for the receiver.
output "siem_signing_secret" {
  value     = intelliauth_audit_stream.siem.signing_secret
  sensitive = true
}

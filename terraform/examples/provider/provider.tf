terraform {
  required_providers {
    intelliauth = {
      source = "intelliauth/intelliauth"
    }
  }
}

# The endpoint, token and organisation can come from INTELLIAUTH_ENDPOINT,
# INTELLIAUTH_TOKEN and INTELLIAUTH_ORGANIZATION_ID instead. For automation
# use a service account's token (cps_…) with the scopes the configuration
# needs, e.g. tenants:read, tenants:create, tenants:suspend, tenants:resume
# and tenants:decommission.
provider "intelliauth" {
  endpoint        = "https://controlplane.example.com"
  organization_id = "org_01JD3M6W9Y2ZJ4VQ8F5T7K0B1C"
  token           = var.intelliauth_token
}

variable "intelliauth_token" {
  type      = string
  sensitive = true
}

# A production tenant.
resource "intelliauth_tenant" "prod" {
  name        = "shop"
  environment = "prod"
}

# An ephemeral tenant for a CI run: its saga decommissions it after an hour,
# with no grace period, even if nobody destroys it.
resource "intelliauth_tenant" "ci" {
  name        = "ci-run-1234"
  environment = "ci"
  expires_in  = 3600
}

# A tenant kept suspended: its route is off and its sessions are ended.
resource "intelliauth_tenant" "archive" {
  name        = "archive"
  environment = "prod"
  state       = "suspended"
}

output "shop_admin_url" {
  value = intelliauth_tenant.prod.admin_url
}

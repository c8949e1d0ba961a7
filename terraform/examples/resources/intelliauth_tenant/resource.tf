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

# A tenant in a region of its own (an installation with regions; see
# GET /api/v1/organizations/{org_id}/regions): its data lives there for
# its whole life, and its hostname is shop-<org>.us.<tenant domain>.
# Changing the region replaces the tenant (with another name: the old
# tenant holds its name through its grace period). Left out, the tenant goes
# to the organisation's default region.
resource "intelliauth_tenant" "us" {
  name        = "shop-us"
  environment = "prod"
  region      = "us"
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

# The account's first token expires after ten minutes: an account holds two
# valid tokens at most, and a rotation needs both places.
resource "intelliauth_service_account" "deploy" {
  name             = "deploy"
  role             = "admin"
  scopes           = ["tenants:read", "tenants:create", "tenants:suspend", "tenants:resume"]
  token_expires_in = 600
}

# A token rotated without downtime: every plan made in the last week of its
# 30 days (or after `rotation` is bumped) mints a new token, hands it on,
# and only then revokes the old one. Apply with a member's token, within
# CP_REAUTH_WINDOW of signing in: minting needs a recent authentication.
resource "intelliauth_service_account_token" "deploy" {
  service_account_id    = intelliauth_service_account.deploy.id
  expires_in            = 30 * 86400
  rotate_when_remaining = 7 * 86400
  keepers = {
    rotation = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

output "deploy_token" {
  value     = intelliauth_service_account_token.deploy.token
  sensitive = true
}

# Applied with a member's token, within CP_REAUTH_WINDOW of signing in:
# creating a service account mints its first token.
resource "intelliauth_service_account" "ci" {
  name             = "ci-pipeline"
  role             = "developer"
  scopes           = ["tenants:read", "tenants:create", "tenants:decommission"]
  environments     = ["ci"]
  token_expires_in = 86400
}

# An account that sees and acts on the tenants of region eu only (an
# installation with regions).
resource "intelliauth_service_account" "eu_deployer" {
  name             = "eu-deployer"
  role             = "developer"
  scopes           = ["tenants:read", "tenants:create"]
  regions          = ["eu"]
  token_expires_in = 86400
}

# The first token, known to the apply that created the account.
output "ci_token" {
  value     = intelliauth_service_account.ci.token
  sensitive = true
}

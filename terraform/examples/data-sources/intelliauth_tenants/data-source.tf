# Every suspended tenant of the prod environment.
data "intelliauth_tenants" "suspended_prod" {
  environment = "prod"
  state       = "suspended"
}

output "suspended_prod_hostnames" {
  value = [for t in data.intelliauth_tenants.suspended_prod.tenants : t.hostname]
}

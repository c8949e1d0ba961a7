# Needs a member's token: service accounts cannot list plans.
data "intelliauth_plans" "all" {}

output "tenant_quota_by_plan" {
  value = { for p in data.intelliauth_plans.all.plans : p.id => p.max_tenants }
}

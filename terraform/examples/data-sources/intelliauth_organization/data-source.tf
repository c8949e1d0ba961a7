data "intelliauth_organization" "this" {}

output "tenant_hostname_pattern" {
  value = "<name>-${data.intelliauth_organization.this.slug}.${data.intelliauth_organization.this.tenant_domain}"
}

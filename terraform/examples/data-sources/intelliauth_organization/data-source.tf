data "intelliauth_organization" "this" {}

output "tenant_hostname_pattern" {
  value = join(".", compact([
    "<name>-${data.intelliauth_organization.this.slug}",
    data.intelliauth_organization.this.default_region,
    data.intelliauth_organization.this.tenant_domain,
  ]))
}

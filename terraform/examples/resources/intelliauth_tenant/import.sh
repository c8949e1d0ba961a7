# A tenant is imported by its id (GET /api/v1/organizations/{org_id}/tenants
# lists them, as does the intelliauth_tenants data source).
tofu import intelliauth_tenant.prod tnt_01JD3M9XKQ5R2V7W8Y4Z6A0B1C

# A service account is imported by its id (GET /api/v1/organizations/{org_id}/service-accounts
# lists them). Its first token's secret is not imported: token is null.
tofu import intelliauth_service_account.ci sa_01JD3N2Q8W4E6R8T0Y2U4I6O8P

# An audit stream is imported by its id (GET /api/v1/organizations/{org_id}/audit-streams
# lists them). Its credential and signing secret are never shown again: not imported.
tofu import intelliauth_audit_stream.siem ast_01JD3R8Y0U2I4O6P8A0S2D4F6G

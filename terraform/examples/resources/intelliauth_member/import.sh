# A member is imported by their id (GET /api/v1/organizations/{org_id}/members lists them).
tofu import intelliauth_member.contractor mem_01JD3Q6T8Y0U2I4O6P8A0S2D4F

# An invitation is imported by its id (GET /api/v1/organizations/{org_id}/invitations lists them).
tofu import intelliauth_invitation.ada inv_01JD3P4R6T8Y0U2I4O6P8A0S2D

# The role of someone who has joined (by accepting an invitation), found by
# address. Applied with a member's token.
resource "intelliauth_member" "ada" {
  email = "ada@example.com"
  role  = "admin"
}

# By id, and removed from the organisation when the resource is destroyed.
resource "intelliauth_member" "contractor" {
  member_id         = "mem_01JD3Q6T8Y0U2I4O6P8A0S2D4F"
  role              = "viewer"
  remove_on_destroy = true
}

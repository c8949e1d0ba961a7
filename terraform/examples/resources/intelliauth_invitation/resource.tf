# The server mails the invitation's secret to the address; the person
# joins by accepting it. Applied with a member's token.
resource "intelliauth_invitation" "ada" {
  email = "ada@example.com"
  role  = "developer"
}

package provider

// What the tests of the organisation's resources (service accounts and
// their tokens, invitations, members, audit streams) share: a member's
// token fresh enough for the acts that need a recent authentication, the
// mail `controlplane dev` writes as files, and people who joined through
// an invitation.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/terraform"
	openapi_types "github.com/oapi-codegen/runtime/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// freshOwner signs the seeded owner in again: a new session counts as a
// recent authentication for CP_REAUTH_WINDOW (10 minutes), which creating
// a service account, minting a token and creating an audit stream ask of
// a member. The session TestMain made may be older than that by the time
// a test runs.
func freshOwner(t *testing.T) (string, *intelliauth.Client) {
	t.Helper()
	anon, err := intelliauth.New(env.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	s, err := intelliauth.Data[intelliauth.SignInResult](anon.SignIn(context.Background(), nil,
		intelliauth.SignInRequest{Email: devOwnerEmail, Password: devOwnerPassword}))
	if err != nil || s.Token == nil {
		t.Fatalf("sign in as %s: %v", devOwnerEmail, err)
	}
	c, err := intelliauth.New(env.endpoint, intelliauth.WithToken(*s.Token))
	if err != nil {
		t.Fatal(err)
	}
	return *s.Token, c
}

// providerWith is the configuration's start with the provider using token
// instead of the environment's service account.
func providerWith(token string) string {
	return providerBlock + fmt.Sprintf("\nprovider \"intelliauth\" {\n  token = %q\n}\n", token)
}

// uniqueEmail is an address no other test uses.
func uniqueEmail(prefix string) string {
	return uniqueName(prefix) + "@example.test"
}

// mailDir is where `controlplane dev`, which has no SMTP relay, writes its
// mail as .eml files: <CP_DATA_DIR>/mail. The harness makes the data dir
// under env.workDir as dev-*; a start that failed removed its own.
func mailDir(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(env.workDir, "dev-*", "mail"))
	if len(dirs) == 1 {
		return dirs[0]
	}
	dataDirs, _ := filepath.Glob(filepath.Join(env.workDir, "dev-*"))
	if len(dataDirs) != 1 {
		t.Fatalf("want one dev data dir under %s, found %v", env.workDir, dataDirs)
	}
	return filepath.Join(dataDirs[0], "mail")
}

// invitationSecretPattern finds the secret in an invitation's mail, where
// it follows the API's accept request.
var invitationSecretPattern = regexp.MustCompile(`"token": "(cpi_[A-Za-z0-9_-]+)"`)

// invitationSecret waits for the nth invitation mail to the address (the
// outbox is sent each second) and returns the secret of the newest.
func invitationSecret(t *testing.T, email string, nth int) string {
	t.Helper()
	// The file is named as the mailer names it: the outbox's sequence,
	// zero-padded, and the address with what is not a-z 0-9 . - as _.
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(email))
	deadline := time.Now().Add(30 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(mailDir(t), "*-"+name+".eml"))
		if len(files) >= nth {
			newest := files[len(files)-1]
			b, err := os.ReadFile(newest)
			if err != nil {
				t.Fatal(err)
			}
			if m := invitationSecretPattern.FindSubmatch(b); m != nil {
				return string(m[1])
			}
			t.Fatalf("no invitation secret in %s:\n%s", newest, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails to %s in %s after 30 seconds, want %d", len(files), email, mailDir(t), nth)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// acceptInvitation accepts the address's nth invitation, its newest, as a
// person without an account would, with the secret from the mail.
func acceptInvitation(t *testing.T, email string, nth int) intelliauth.AcceptResult {
	t.Helper()
	anon, err := intelliauth.New(env.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	name := "Joined Person"
	accepted, err := intelliauth.Data[intelliauth.AcceptResult](anon.AcceptInvitation(context.Background(), nil,
		intelliauth.AcceptRequest{Token: invitationSecret(t, email, nth), Name: &name, Password: "a-long-enough-password"}))
	if err != nil {
		t.Fatalf("accept the invitation of %s: %v", email, err)
	}
	return accepted
}

// joinedMember invites a new address with the role and accepts the
// invitation, as a person joins: the organisation's newest member.
func joinedMember(t *testing.T, role string) intelliauth.Member {
	t.Helper()
	email := uniqueEmail("joined")
	if _, err := intelliauth.Data[intelliauth.Invitation](env.owner.CreateInvitation(context.Background(), env.orgID, nil,
		intelliauth.InviteRequest{Email: openapi_types.Email(email), Role: intelliauth.Role(role)})); err != nil {
		t.Fatalf("invite %s: %v", email, err)
	}
	a := acceptInvitation(t, email, 1)
	m, found := memberNamed(t, a.Member.Id)
	if !found {
		t.Fatalf("member %s (%s) not listed after accepting", a.Member.Id, email)
	}
	return m
}

// memberNamed finds a member by id as the owner sees the members.
func memberNamed(t *testing.T, id string) (intelliauth.Member, bool) {
	t.Helper()
	d := &providerData{client: env.owner, orgID: env.orgID}
	m, found, err := findMember(context.Background(), d, id, "")
	if err != nil {
		t.Fatalf("list members: %v", err)
	}
	return m, found
}

// invitationNamed finds an invitation by id as the owner sees them.
func invitationNamed(t *testing.T, id string) (intelliauth.Invitation, bool) {
	t.Helper()
	inv, found, err := invitation(context.Background(), &providerData{client: env.owner, orgID: env.orgID}, id)
	if err != nil {
		t.Fatalf("list invitations: %v", err)
	}
	return inv, found
}

// stateAttr reads an attribute of a resource from the state into *v.
func stateAttr(addr, attr string, v *string) func(*terraform.State) error {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s not in the state", addr)
		}
		*v = rs.Primary.Attributes[attr]
		if *v == "" {
			return fmt.Errorf("%s.%s is empty", addr, attr)
		}
		return nil
	}
}

// tokenWorks reports whether a service account's token authenticates: it
// reads the organisation, which every test account may.
func tokenWorks(token string) (bool, error) {
	c, err := intelliauth.New(env.endpoint, intelliauth.WithToken(token), intelliauth.WithRetry(1, 0))
	if err != nil {
		return false, err
	}
	_, err = intelliauth.Data[intelliauth.Organization](c.GetOrganization(context.Background(), env.orgID))
	switch {
	case err == nil:
		return true, nil
	case isStatus(err, 401):
		return false, nil
	}
	return false, err
}

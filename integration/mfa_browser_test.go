package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/totp"
)

// TestAPersonTurnsOnAnAuthenticatorAppAndSignsInWithItsCode: on their
// account page a person sets up an authenticator app from the key beside
// the QR code, confirms it with a code, is shown their recovery codes once,
// signs out, and signs back in with the password and then a code; and once
// more with a recovery code.
func TestAPersonTurnsOnAnAuthenticatorAppAndSignsInWithItsCode(t *testing.T) {
	t.Parallel()
	p := startDev(t, devEnv(t))
	origin := "http://" + p.api
	c := openConsole(t, origin)
	c.navigate("/sign-in")
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitPath(`^/orgs/`)
	c.navigate("/account")
	c.waitText("Two-step sign-in")
	c.press("[data-testid=two-step]", "Set up an authenticator app")
	c.waitFor("the enrolment", `document.querySelector("[data-testid=totp-enrolment] svg.qr path")?.getAttribute("d").length > 100`)
	c.accessible("account-totp-enrolment")
	secret := strings.ReplaceAll(eval[string](c, `document.querySelector("[data-testid=totp-secret]").innerText`), " ", "")
	now := time.Now()
	code, err := totp.Code(secret, now)
	if err != nil {
		t.Fatalf("the key shown (%q): %v", secret, err)
	}
	c.fill(`[data-testid=totp-enrolment] input[name=code]`, code)
	c.press("[data-testid=totp-enrolment]", "Turn on")
	c.waitFor("the recovery codes", `document.querySelectorAll("[data-testid=recovery-codes] li").length === 10`)
	c.accessible("account-recovery-codes")
	recovery := eval[[]string](c, `[...document.querySelectorAll("[data-testid=recovery-codes] li")].map(li => li.innerText)`)
	c.press("[data-testid=recovery-codes]", "I have saved them")
	c.waitFor("TOTP on", `document.querySelector("[data-testid=totp-on]") !== null && document.querySelector("[data-testid=recovery-codes]") === null`)

	// Signed out, the password alone no longer signs in.
	c.press(`[data-testid=session][data-current=true]`, "Sign out")
	c.waitPath(`^/sign-in$`)
	c.fill(`input[name=email]`, devOwnerEmail)
	c.fill(`input[name=password]`, devOwnerPassword)
	c.press("form", "Sign in")
	c.waitFor("the second step", `document.querySelector("[data-testid=second-step] input[name=code]") !== null`)
	if tok := eval[string](c, `sessionStorage.getItem("intelliauth.session") || ""`); tok != "" {
		t.Fatalf("the password alone stored a session: %s", tok)
	}
	c.accessible("sign-in-second-step")
	next, _ := totp.Code(secret, now.Add(totp.Period))
	c.fill(`[data-testid=second-step] input[name=code]`, next)
	c.press("[data-testid=second-step]", "Verify")
	c.waitPath(`^/orgs/`)

	// Once more, with a recovery code instead of the app.
	c.navigate("/account")
	c.press(`[data-testid=session][data-current=true]`, "Sign out")
	c.waitPath(`^/sign-in$`)
	c.fill(`input[name=email]`, devOwnerEmail)
	c.fill(`input[name=password]`, devOwnerPassword)
	c.press("form", "Sign in")
	c.press("main", "Lost your device? Use a recovery code")
	c.waitText("Recovery code")
	c.fill(`[data-testid=second-step] input[name=code]`, recovery[0])
	c.press("[data-testid=second-step]", "Verify")
	c.waitPath(`^/orgs/`)
	c.navigate("/account")
	c.waitFor("nine codes left", `document.querySelector("[data-testid=two-step]")?.innerText.includes("9 of your recovery codes are left")`)
}

// enrolDevTOTP turns TOTP on for the dev client's person through the API
// and returns its secret.
func enrolDevTOTP(t *testing.T, d *devClient) string {
	t.Helper()
	code, out := d.do("POST", "/me/totp", nil)
	if code != 201 {
		t.Fatalf("enrol: %d %v", code, out)
	}
	secret := out["data"].(map[string]any)["secret"].(string)
	now, _ := totp.Code(secret, time.Now())
	if code, out := d.do("POST", "/me/totp/confirm", map[string]any{"code": now}); code != 200 {
		t.Fatalf("confirm: %d %v", code, out)
	}
	return secret
}

// signInWithCode signs in from the sign-in page with the password and
// then a TOTP code of secret (of the next time step: the one of now may
// have been used).
func (c *consoleTab) signInWithCode(email, password, secret string) {
	c.t.Helper()
	c.waitPath(`^/sign-in$`)
	c.fill(`input[name=email]`, email)
	c.fill(`input[name=password]`, password)
	c.press("form", "Sign in")
	c.waitFor("the second step", `document.querySelector("[data-testid=second-step] input[name=code]") !== null`)
	code, _ := totp.Code(secret, time.Now().Add(totp.Period))
	c.fill(`[data-testid=second-step] input[name=code]`, code)
	c.press("[data-testid=second-step]", "Verify")
	c.waitFor("leaving the sign-in page", `location.pathname !== "/sign-in"`)
}

// TestAnOwnerRequiresTwoStepSignInAndAMemberWithoutItIsLedToEnrol: an
// owner with an authenticator app sees who would be held at the door and
// requires two-step sign-in; a developer without a second factor who signs
// in is led from the organisation to their account page, sets up an app,
// and gets in.
func TestAnOwnerRequiresTwoStepSignInAndAMemberWithoutItIsLedToEnrol(t *testing.T) {
	t.Parallel()
	env := devEnv(t)
	p := startDev(t, env)
	origin := "http://" + p.api
	owner := signInDev(t, p.api)
	secret := enrolDevTOTP(t, owner)
	const devEmail, devPassword = "dev@acme.test", "a developer's long password"
	join(t, owner, lookup(env, "CP_DATA_DIR"), devEmail, "developer", devPassword)

	c := openConsole(t, origin)
	c.navigate("/sign-in")
	c.signInWithCode(devOwnerEmail, devOwnerPassword, secret)
	c.waitPath(`^/orgs/`)
	c.navigate("/orgs/" + owner.org + "/settings")
	c.waitFor("who would be held at the door", `document.querySelector("[data-testid=held-at-the-door]")?.innerText.includes("`+devEmail+`")`)
	c.accessible("settings-require-mfa")
	c.press("[data-testid=security]", "Require two-step sign-in")
	c.waitFor("required", `document.querySelector("[data-testid=security]")?.innerText.includes("Every member must sign in with a second factor")`)
	if code, out := owner.do("GET", "/organizations/"+owner.org, nil); code != 200 || out["data"].(map[string]any)["require_mfa"] != true {
		t.Fatalf("the organisation after the switch: %d %v", code, out)
	}

	d := openConsole(t, origin)
	d.navigate("/sign-in")
	d.signIn(devEmail, devPassword)
	d.waitPath(`^/account$`)
	d.waitFor("why", `document.querySelector("[data-testid=mfa-required]")?.innerText.includes("requires two-step sign-in")`)
	d.accessible("account-mfa-required")
	d.press("[data-testid=two-step]", "Set up an authenticator app")
	d.waitFor("the key", `document.querySelector("[data-testid=totp-secret]") !== null`)
	devSecret := strings.ReplaceAll(eval[string](d, `document.querySelector("[data-testid=totp-secret]").innerText`), " ", "")
	code, _ := totp.Code(devSecret, time.Now())
	d.fill(`[data-testid=totp-enrolment] input[name=code]`, code)
	d.press("[data-testid=totp-enrolment]", "Turn on")
	d.waitFor("the recovery codes", `document.querySelectorAll("[data-testid=recovery-codes] li").length === 10`)
	d.press("[data-testid=recovery-codes]", "I have saved them")
	d.waitFor("no longer held", `document.querySelector("[data-testid=mfa-required]") === null`)
	d.navigate("/orgs/" + owner.org + "/tenants")
	d.waitFor("the tenants page", `document.querySelector("h1")?.innerText.includes("Tenants")`)
	if eval[string](d, `location.pathname`) != "/orgs/"+owner.org+"/tenants" {
		t.Fatal("the enrolled developer was sent away from the organisation")
	}
}

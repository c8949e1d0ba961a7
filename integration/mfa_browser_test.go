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

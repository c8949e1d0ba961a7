package integration

import (
	"bytes"
	"net"
	"strings"
	"testing"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// console is the dev process's console URL: its listen address by the
// name localhost (dev's default CP_CONSOLE_URL), since a passkey's
// relying party id cannot be an IP address.
func (p *devProcess) console() string {
	_, port, _ := net.SplitHostPort(p.api)
	return "http://" + net.JoinHostPort("localhost", port)
}

// addVirtualAuthenticator gives the tab a platform authenticator that
// keeps discoverable credentials and verifies its user at once, as a
// laptop's fingerprint reader would (Chrome's DevTools WebAuthn domain).
func (c *consoleTab) addVirtualAuthenticator() cdpwebauthn.AuthenticatorID {
	c.t.Helper()
	ctx, cancel := c.step(within)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		c.t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{Options: &cdpwebauthn.VirtualAuthenticatorOptions{
		Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Transport: cdpwebauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		c.t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}

// credentials are what the virtual authenticator holds.
func (c *consoleTab) credentials(id cdpwebauthn.AuthenticatorID) []*cdpwebauthn.Credential {
	c.t.Helper()
	ctx, cancel := c.step(within)
	defer cancel()
	res, err := chromedp.Call(ctx, cdpwebauthn.GetCredentials, cdpwebauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		c.t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return res.Credentials
}

// TestAPersonAddsAPasskeyOnTheirAccountPageAndSignsInWithItWithoutAPassword:
// in Chromium with a virtual authenticator, on dev's console at
// http://localhost:<port> (its relying party id is localhost), the owner
// adds a passkey from their account page, signs out, and signs in with
// "Sign in with a passkey", typing neither email nor password.
func TestAPersonAddsAPasskeyOnTheirAccountPageAndSignsInWithItWithoutAPassword(t *testing.T) {
	t.Parallel()
	p := startDev(t, devEnv(t))
	origin := p.console()
	c := openConsole(t, origin, "MAP localhost 127.0.0.1")
	authenticator := c.addVirtualAuthenticator()

	c.navigate("/sign-in")
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitPath(`^/orgs/`)
	c.press("header", devOwnerEmail)
	c.waitPath(`^/account$`)
	c.waitFor("no passkey yet", `document.querySelector("[data-testid=no-passkeys]")`)
	c.fill(`input[name=passkey-name]`, "Work laptop")
	c.press("main", "Add a passkey")
	c.waitFor("the passkey listed", `[...document.querySelectorAll("[data-testid=passkey]")].some(r => r.innerText.includes("Work laptop") && r.innerText.includes("never"))`)
	c.waitText("Passkey “Work laptop” added")
	c.accessible("account-passkeys")
	c.screenshot("account-passkeys")

	// The authenticator holds one discoverable credential for localhost,
	// whose user handle is the owner's id.
	// (Its password alone no longer signs in: the console's own session
	// asks.)
	me := &devClient{t: t, base: "http://" + p.api + "/api/v1", token: c.token()}
	_, who := me.do("GET", "/me", nil)
	userID, _ := who["data"].(map[string]any)["user"].(map[string]any)["id"].(string)
	creds := c.credentials(authenticator)
	if len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" || !bytes.Equal(creds[0].UserHandle, []byte(userID)) {
		t.Fatalf("the authenticator's credentials: %+v (the owner is %s)", creds, userID)
	}

	c.press(`[data-testid=session][data-current=true]`, "Sign out")
	c.waitPath(`^/sign-in$`)
	c.waitText("Sign in with a passkey")
	c.accessible("sign-in-passkey")
	c.press("main", "Sign in with a passkey")
	c.waitFor("leaving the sign-in page", `location.pathname !== "/sign-in"`)
	c.waitPath(`^/orgs/`)
	if c.token() == "" {
		t.Fatal("no session after the passkey sign-in")
	}
	// The sign-in is on the owner's account events, by passkey.
	me.token = c.token()
	_, events := me.do("GET", "/me/events?limit=5", nil)
	if !strings.Contains(toJSON(events), `"method":"passkey"`) {
		t.Fatalf("no passkey sign-in among the owner's events: %v", events)
	}
	// With the password, the passkey is the second step.
	c.navigate("/account")
	c.press(`[data-testid=session][data-current=true]`, "Sign out")
	c.waitPath(`^/sign-in$`)
	c.fill(`input[name=email]`, devOwnerEmail)
	c.fill(`input[name=password]`, devOwnerPassword)
	c.press("form", "Sign in")
	c.waitFor("the second step", `document.querySelector("[data-testid=passkey-step]") !== null`)
	c.accessible("sign-in-second-step-passkey")
	c.press("[data-testid=passkey-step]", "Use your passkey")
	c.waitPath(`^/orgs/`)

	c.press("header", devOwnerEmail)
	c.waitPath(`^/account$`)
	c.waitFor("the passkey used", `[...document.querySelectorAll("[data-testid=passkey]")].some(r => r.innerText.includes("Work laptop") && !r.innerText.includes("never"))`)
	// Just signed in, the person may remove it.
	c.press("[data-testid=passkey]", "Remove")
	c.waitFor("no passkey left", `document.querySelector("[data-testid=no-passkeys]")`)
	c.waitText("Passkey “Work laptop” removed")
}

package passkey

import (
	"encoding/json"
	"testing"
)

func TestTheRelyingPartyIsTheConsolesHostNameAndItsOriginTheOnlyOne(t *testing.T) {
	for _, tt := range []struct {
		name, console, id, origin string
	}{
		{"a console under the domain", "https://manage.example.com", "manage.example.com", "https://manage.example.com"},
		{"a console under a path, on a port", "https://console.example.com:8443/manage", "console.example.com", "https://console.example.com:8443"},
		{"dev's console on localhost", "http://localhost:8080", "localhost", "http://localhost:8080"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rp, err := New(tt.console)
			if err != nil {
				t.Fatal(err)
			}
			if rp.ID() != tt.id || len(rp.w.Config.RPOrigins) != 1 || rp.w.Config.RPOrigins[0] != tt.origin || rp.w.Config.RPDisplayName != DisplayName {
				t.Fatalf("id %q, origins %v, name %q; want %q, [%s]", rp.ID(), rp.w.Config.RPOrigins, rp.w.Config.RPDisplayName, tt.id, tt.origin)
			}
			options, ceremony, err := rp.BeginSignIn(nil)
			if err != nil {
				t.Fatal(err)
			}
			var o struct {
				RPID             string `json:"rpId"`
				UserVerification string `json:"userVerification"`
			}
			if err := json.Unmarshal(options, &o); err != nil || o.RPID != tt.id || o.UserVerification != "required" || len(ceremony) == 0 {
				t.Fatalf("passwordless options %s (%v)", options, err)
			}
		})
	}
}

func TestAConsoleAtAnIPAddressHasNoPasskeys(t *testing.T) {
	for _, console := range []string{"http://127.0.0.1:8080", "http://[::1]:8080", "https://10.0.0.5", "not a url"} {
		if _, err := New(console); err == nil {
			t.Errorf("%s: a relying party", console)
		}
	}
}

func TestACounterThatDoesNotMoveForwardIsAClone(t *testing.T) {
	for _, tt := range []struct {
		before, now uint32
		clone       bool
	}{
		{0, 0, false}, // an authenticator that keeps no counter
		{0, 1, false},
		{5, 6, false},
		{5, 5, true},
		{5, 2, true},
		{5, 0, true},
	} {
		if got := CounterWentBack(tt.before, tt.now); got != tt.clone {
			t.Errorf("counter %d then %d: clone %v, want %v", tt.before, tt.now, got, tt.clone)
		}
	}
}

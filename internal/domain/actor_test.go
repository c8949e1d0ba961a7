package domain

import (
	"encoding/json"
	"testing"
)

// TestAnActorsJSONIsWhatRecordedHistoriesHold pins the encoding workflow
// inputs carry (revision 5 histories hold it): an empty email is written,
// an empty name and a missing on_behalf_of are not.
func TestAnActorsJSONIsWhatRecordedHistoriesHold(t *testing.T) {
	for _, c := range []struct {
		actor Actor
		want  string
	}{
		{Actor{Type: "member", ID: "mem_1", Email: "a@x.test"}, `{"type":"member","id":"mem_1","email":"a@x.test"}`},
		{Actor{Type: "service_account", ID: "sa_1", Name: "ci-bot", OnBehalfOf: &Actor{Type: "member", ID: "mem_1", Email: "a@x.test"}},
			`{"type":"service_account","id":"sa_1","email":"","name":"ci-bot","on_behalf_of":{"type":"member","id":"mem_1","email":"a@x.test"}}`},
		{Actor{Type: "system", ID: "expiry", OnBehalfOf: &Actor{Type: "member", ID: "mem_1"}},
			`{"type":"system","id":"expiry","email":"","on_behalf_of":{"type":"member","id":"mem_1","email":""}}`},
		// The token a service account used is written when there is one,
		// last, so actors written before it existed encode as they did.
		{Actor{Type: "service_account", ID: "sa_1", Name: "ci-bot", OnBehalfOf: &Actor{Type: "member", ID: "mem_1", Email: "a@x.test"}, TokenID: "sat_1"},
			`{"type":"service_account","id":"sa_1","email":"","name":"ci-bot","on_behalf_of":{"type":"member","id":"mem_1","email":"a@x.test"},"token_id":"sat_1"}`},
	} {
		b, err := json.Marshal(c.actor)
		if err != nil || string(b) != c.want {
			t.Errorf("%+v encodes as %s (%v), want %s", c.actor, b, err, c.want)
		}
		var back Actor
		if err := json.Unmarshal([]byte(c.want), &back); err != nil {
			t.Fatal(err)
		}
		if b2, _ := json.Marshal(back); string(b2) != c.want {
			t.Errorf("%s decodes and encodes as %s", c.want, b2)
		}
	}
}

package store

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPseudonymsReplaceEmailsAndPeoplesNamesOnlyAndTheSameWayEachTime(t *testing.T) {
	p := pseudonyms{key: []byte("k"), byEmail: map[string]string{}, byName: map[string]string{}}
	p.byEmail["ada@example.test"] = p.email("usr_ADA")
	p.byName["owner"] = p.name("usr_ADA")
	for _, tc := range []struct {
		name, in string
		keeps    []string
		drops    []string
	}{
		{"an email anywhere, known or not", `{"after":{"invited":"ada@example.test","cc":["Bob@Example.test"]}}`, nil, []string{"ada@", "Bob@"}},
		{"a person's name beside their email", `{"email":"ada@example.test","name":"owner","role":"owner"}`, []string{`"role":"owner"`}, []string{`"name":"owner"`}},
		{"a tenant's name, and a role, are not a person's", `{"after":{"name":"owner","role":"owner"}}`, []string{`"name":"owner"`, `"role":"owner"`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := p.json(json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			again, _, _ := p.json(json.RawMessage(tc.in))
			if string(out) != string(again) {
				t.Fatalf("not stable: %s then %s", out, again)
			}
			for _, k := range tc.keeps {
				if !strings.Contains(string(out), k) {
					t.Errorf("%s lost %s", out, k)
				}
			}
			for _, d := range tc.drops {
				if strings.Contains(string(out), d) {
					t.Errorf("%s still has %s", out, d)
				}
			}
		})
	}
	if e, _ := p.anEmail("ada@example.test"); e != p.email("usr_ADA") || !strings.HasSuffix(e, "@erased.invalid") {
		t.Fatalf("a member's email becomes %s", e)
	}
}

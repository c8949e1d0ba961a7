package auditchain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTheCanonicalFormIsRFC8785WithoutTheHash(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"members are sorted and whitespace goes",
			`{ "seq": 3, "id": "evt_1", "data": {"b": 1, "a": [true, null]} }`,
			`{"data":{"a":[true,null],"b":1},"id":"evt_1","seq":3}`},
		{"the hash is left out",
			`{"id":"evt_1","seq":1,"hash":"00"}`, `{"id":"evt_1","seq":1}`},
		{"numbers are printed as ECMAScript does",
			`{"a":1.0,"b":1e3,"c":1.50,"d":-0,"e":1e21,"f":0.000001,"g":1E-7}`,
			`{"a":1,"b":1000,"c":1.5,"d":0,"e":1e+21,"f":0.000001,"g":1e-7}`},
		{"strings keep unicode and escape only what they must",
			`{"s":"\u00e9\u20ac\ud83d\ude00 \"q\" \\ \/ \u001f \t <>&"}`,
			"{\"s\":\"é€😀 \\\"q\\\" \\\\ / \\u001f \\t <>&\"}"},
		{"keys sort by UTF-16 code units",
			`{"\ud83d\ude00":1,"\ufb01":2,"z":3,"Z":4}`, "{\"Z\":4,\"z\":3,\"😀\":1,\"ﬁ\":2}"},
		{"a key given twice keeps the last, as jsonb does",
			`{"id":"evt_1","data":{"k":1,"k":2}}`, `{"data":{"k":2},"id":"evt_1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Canonical(%s)\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestAnEventThatIsNotAnObjectOrHasAnInfiniteNumberHasNoCanonicalForm(t *testing.T) {
	for _, in := range []string{`null`, `[1]`, `{"a":1e400}`, `{"a":`} {
		if got, err := Canonical([]byte(in)); err == nil {
			t.Errorf("Canonical(%s) = %s, want an error", in, got)
		}
	}
}

func TestALinkIsTheSHA256OfThePreviousHashAndTheCanonicalForm(t *testing.T) {
	c := []byte(`{"id":"evt_1","seq":1}`)
	want := sha256.Sum256(append(make([]byte, 32), c...))
	if got := Link(Genesis, c); hex.EncodeToString(got) != hex.EncodeToString(want[:]) {
		t.Fatalf("Link = %x, want %x", got, want)
	}
}

func TestASignedHeadVerifiesWithItsKeyOnlyAndSaysWhatItSigned(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	head := Link(Genesis, []byte("x"))
	at := time.Date(2026, 12, 3, 10, 0, 0, 999, time.FixedZone("CET", 3600))
	purgedAt := time.Date(2025, 12, 1, 8, 30, 0, 123456789, time.UTC)
	cp := NewCheckpoint(3, Link(Genesis, []byte("c")), &purgedAt)
	h := Sign(key, "k2", "org_1", 7, head, cp, at)
	want := "intelliauth-audit-chain/v2\norg_1\n7\n" + hex.EncodeToString(head) + "\n3\n" + cp.Hash + "\n2025-12-01T08:30:00.123456Z\n2026-12-03T09:00:00Z"
	if got := string(MessageV2(h.OrgID, h.Length, head, *h.Checkpoint, h.SignedAt)); got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
	none := NewCheckpoint(0, nil, nil)
	if got, want := string(MessageV2("org_1", 0, Genesis, none, at)), "intelliauth-audit-chain/v2\norg_1\n0\n"+hex.EncodeToString(Genesis)+"\n0\n"+hex.EncodeToString(Genesis)+"\n\n2026-12-03T09:00:00Z"; got != want {
		t.Fatalf("message of a chain never purged = %q, want %q", got, want)
	}
	keys := []PublicKey{PublicKeyOf("k1", other), PublicKeyOf("k2", key)}
	if err := h.Verify(keys); err != nil {
		t.Fatalf("a head verifies with its key: %v", err)
	}
	// A v1 head, signed before retention, still verifies.
	v1 := Head{OrgID: "org_1", Length: 7, Head: h.Head, SignedAt: h.SignedAt, KeyID: "k2"}
	v1.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, Message(v1.OrgID, v1.Length, head, v1.SignedAt)))
	if err := v1.Verify(keys); err != nil {
		t.Fatalf("a v1 head: %v", err)
	}
	later := NewCheckpoint(4, Link(Genesis, []byte("d")), &purgedAt)
	for name, bad := range map[string]Head{
		"another length":     {OrgID: h.OrgID, Length: 8, Head: h.Head, Checkpoint: &cp, SignedAt: h.SignedAt, KeyID: "k2", Signature: h.Signature},
		"another org":        {OrgID: "org_2", Length: 7, Head: h.Head, Checkpoint: &cp, SignedAt: h.SignedAt, KeyID: "k2", Signature: h.Signature},
		"another key":        {OrgID: h.OrgID, Length: 7, Head: h.Head, Checkpoint: &cp, SignedAt: h.SignedAt, KeyID: "k1", Signature: h.Signature},
		"an unknown key":     {OrgID: h.OrgID, Length: 7, Head: h.Head, Checkpoint: &cp, SignedAt: h.SignedAt, KeyID: "k3", Signature: h.Signature},
		"another checkpoint": {OrgID: h.OrgID, Length: 7, Head: h.Head, Checkpoint: &later, SignedAt: h.SignedAt, KeyID: "k2", Signature: h.Signature},
		"its checkpoint cut": {OrgID: h.OrgID, Length: 7, Head: h.Head, SignedAt: h.SignedAt, KeyID: "k2", Signature: h.Signature},
	} {
		if err := bad.Verify(keys); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// chain makes n events chained from genesis, as JSON lines.
func chain(t *testing.T, n int) [][]byte {
	t.Helper()
	prev := Genesis
	var out [][]byte
	for i := 1; i <= n; i++ {
		ev := map[string]any{"id": fmt.Sprintf("evt_%02d", i), "seq": i, "action": "test.done", "data": map[string]any{"n": i}}
		b, _ := json.Marshal(ev)
		c, err := Canonical(b)
		if err != nil {
			t.Fatal(err)
		}
		prev = Link(prev, c)
		ev["hash"] = hex.EncodeToString(prev)
		b, _ = json.Marshal(ev)
		out = append(out, b)
	}
	return out
}

func records(t *testing.T, lines [][]byte) []Record {
	t.Helper()
	var out []Record
	for _, l := range lines {
		r, err := RecordOf(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func set(t *testing.T, line []byte, key string, v any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = v
	b, _ := json.Marshal(m)
	return b
}

func TestTheVerifierNamesTheFirstBadEventAndWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, ls [][]byte) [][]byte
		want   string // "" : good
	}{
		{"an untouched chain is good", func(t *testing.T, ls [][]byte) [][]byte { return ls }, ""},
		{"an edited event", func(t *testing.T, ls [][]byte) [][]byte {
			ls[16] = set(t, ls[16], "action", "test.undone")
			return ls
		}, "event evt_17 (seq 17): hash does not match its content (edited)"},
		{"an event deleted", func(t *testing.T, ls [][]byte) [][]byte {
			return append(ls[:17:17], ls[18:]...)
		}, "event 18 missing (deleted): the chain goes from seq 17 to event evt_19 (seq 19)"},
		{"two events deleted", func(t *testing.T, ls [][]byte) [][]byte {
			return append(ls[:17:17], ls[19:]...)
		}, "events 18–19 missing (deleted)"},
		{"the last events deleted, against the head", func(t *testing.T, ls [][]byte) [][]byte { return ls[:37] },
			"events 38–40 missing (deleted): the head counts 40 events, the trail ends at seq 37"},
		{"two events swapped, their seqs exchanged", func(t *testing.T, ls [][]byte) [][]byte {
			a, b := set(t, ls[20], "seq", 22), set(t, ls[21], "seq", 21)
			ls[20], ls[21] = b, a
			return ls
		}, "event evt_22 (seq 21): its hash says it was seq 22 (reordered)"},
		{"two events swapped, seqs and hashes left in place", func(t *testing.T, ls [][]byte) [][]byte {
			var a, b map[string]any
			_ = json.Unmarshal(ls[20], &a)
			_ = json.Unmarshal(ls[21], &b)
			a["seq"], b["seq"], a["hash"], b["hash"] = b["seq"], a["seq"], b["hash"], a["hash"]
			ls[20], _ = json.Marshal(b)
			ls[21], _ = json.Marshal(a)
			return ls
		}, "event evt_22 (seq 21): its hash says it was seq 22 (reordered)"},
		{"two events with one seq", func(t *testing.T, ls [][]byte) [][]byte {
			return append(ls[:11:11], append([][]byte{set(t, ls[10], "id", "evt_xx")}, ls[11:]...)...)
		}, "events evt_11 and evt_xx both have seq 11 (duplicated)"},
		{"the head rewritten", func(t *testing.T, ls [][]byte) [][]byte { return ls }, "not the chain's head (head rewritten)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := tc.tamper(t, chain(t, 40))
			rs := records(t, lines)
			v := NewVerifier()
			// Fed in batches of 7, so a bad event may be at a batch's
			// edge.
			for i := 0; i < len(rs); i += 7 {
				if _, err := v.Feed(rs[i:min(i+7, len(rs))]...); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := v.Close(); err != nil {
				t.Fatal(err)
			}
			last := records(t, chain(t, 40))[39].Hash
			if strings.Contains(tc.name, "head rewritten") {
				last = Genesis
			}
			p := v.CheckHead(40, last)
			switch {
			case tc.want == "" && p != nil:
				t.Fatalf("problem %q in a good chain", p.Message)
			case tc.want != "" && (p == nil || !strings.Contains(p.Message, tc.want)):
				t.Fatalf("problem = %v, want %q", p, tc.want)
			}
		})
	}
}

// BenchmarkCanonical is the canonical form of a typical event, which each
// write computes once.
func BenchmarkCanonical(b *testing.B) {
	ev := []byte(`{"id":"evt_01KBMZ6Y1Q8Q5Q8Q5Q8Q5Q8Q5Q","org_id":"org_01KBMZ6Y1Q8Q5Q8Q5Q8Q5Q8Q5Q","action":"organization.updated",` +
		`"actor":{"type":"member","id":"mem_01KBMZ6Y1Q8Q5Q8Q5Q8Q5Q8Q5Q","email":"ada@example.test"},"target":{"type":"organization","id":"org_01KBMZ6Y1Q8Q5Q8Q5Q8Q5Q8Q5Q"},` +
		`"request_id":"req_01KBMZ6Y1Q8Q5Q8Q5Q8Q5Q8Q5Q","client_addr":"203.0.113.7","user_agent":"Mozilla/5.0 (X11; Linux x86_64)",` +
		`"data":{"before":{"name":"Acme"},"after":{"name":"Acme Corp"}},"occurred_at":"2026-12-03T10:00:00.123456Z","seq":17}`)
	for b.Loop() {
		if _, err := Canonical(ev); err != nil {
			b.Fatal(err)
		}
	}
}

package auditchain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// export is the lines as an export gives them: newest first.
func export(t *testing.T, lines [][]byte) *bytes.Reader {
	t.Helper()
	var b bytes.Buffer
	for _, l := range slices.Backward(lines) {
		var m map[string]any
		_ = json.Unmarshal(l, &m)
		m["org_id"] = "org_1"
		out, _ := json.Marshal(m)
		b.Write(append(out, '\n'))
	}
	return bytes.NewReader(b.Bytes())
}

// withOrg re-chains lines with their org_id, as an export has it.
func withOrg(t *testing.T, n int) [][]byte {
	t.Helper()
	prev := Genesis
	var out [][]byte
	for _, l := range chain(t, n) {
		l = set(t, l, "org_id", "org_1")
		var m map[string]any
		_ = json.Unmarshal(l, &m)
		delete(m, "hash")
		b, _ := json.Marshal(m)
		c, _ := Canonical(b)
		prev = Link(prev, c)
		out = append(out, set(t, l, "hash", hex.EncodeToString(prev)))
	}
	return out
}

func TestAnExportVerifiesNewestFirstAgainstAHeadKeptFromBefore(t *testing.T) {
	lines := withOrg(t, 30)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	kept := Sign(key, "k1", "org_1", 20, records(t, lines)[19].Hash, time.Now())
	rep, err := VerifyExport(export(t, lines), "org_1", &kept)
	if err != nil || rep.Problem != nil || rep.Checked != 30 || rep.First != 1 || rep.Last != 30 {
		t.Fatalf("report %+v, %v", rep, err)
	}

	// The chain rewritten after the head was kept: event 20 is new.
	rewritten := withOrg(t, 30)
	rewritten[19] = set(t, rewritten[19], "hash", hex.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	if rep, _ := VerifyExport(export(t, rewritten), "org_1", &kept); rep.Problem == nil {
		t.Fatal("an edited event 20 went unnoticed")
	}
	other := Sign(key, "k1", "org_1", 20, bytes.Repeat([]byte{9}, 32), time.Now())
	if rep, _ := VerifyExport(export(t, lines), "org_1", &other); rep.Problem == nil || rep.Problem.Kind != HeadMismatch {
		t.Fatalf("a head the chain does not reach: %+v", rep.Problem)
	}
	// The last events deleted: the head counts more.
	later := Sign(key, "k1", "org_1", 30, records(t, lines)[29].Hash, time.Now())
	if rep, _ := VerifyExport(export(t, lines[:27]), "org_1", &later); rep.Problem == nil || !strings.Contains(rep.Problem.Message, "events 28–30 missing (deleted)") {
		t.Fatalf("events deleted at the end: %+v", rep.Problem)
	}
}

func TestAnExportThatStartsLaterTakesItsFirstEventAsGiven(t *testing.T) {
	lines := withOrg(t, 30)
	rep, err := VerifyExport(export(t, lines[10:]), "org_1", nil)
	if err != nil || rep.Problem != nil || rep.First != 11 || rep.Checked != 19 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	lines[15] = set(t, lines[15], "action", "test.edited")
	if rep, _ := VerifyExport(export(t, lines[10:]), "org_1", nil); rep.Problem == nil || rep.Problem.Seq != 16 || rep.Problem.Kind != Edited {
		t.Fatalf("an edited event: %+v", rep.Problem)
	}
}

func TestAnExportOfAnotherOrganisationIsRefused(t *testing.T) {
	if _, err := VerifyExport(export(t, withOrg(t, 2)), "org_2", nil); err == nil {
		t.Fatal("verified another organisation's export")
	}
}

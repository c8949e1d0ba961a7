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
	kept := Sign(key, "k1", "org_1", 20, records(t, lines)[19].Hash, NewCheckpoint(0, nil, nil), time.Now())
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
	other := Sign(key, "k1", "org_1", 20, bytes.Repeat([]byte{9}, 32), NewCheckpoint(0, nil, nil), time.Now())
	if rep, _ := VerifyExport(export(t, lines), "org_1", &other); rep.Problem == nil || rep.Problem.Kind != HeadMismatch {
		t.Fatalf("a head the chain does not reach: %+v", rep.Problem)
	}
	// The last events deleted: the head counts more.
	later := Sign(key, "k1", "org_1", 30, records(t, lines)[29].Hash, NewCheckpoint(0, nil, nil), time.Now())
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

func TestAnExportOfAPurgedTrailVerifiesFromTheSignedHeadsCheckpoint(t *testing.T) {
	lines := withOrg(t, 30)
	recs := records(t, lines)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	at := time.Now().Add(-400 * 24 * time.Hour)
	head := Sign(key, "k1", "org_1", 30, recs[29].Hash, NewCheckpoint(10, recs[9].Hash, &at), time.Now())

	// Purged up to seq 10: the export starts at 11, which links to the
	// checkpoint's hash.
	rep, err := VerifyExport(export(t, lines[10:]), "org_1", &head)
	if err != nil || rep.Problem != nil || rep.First != 11 || rep.Checked != 20 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	// So its first event is checked too, not taken as given.
	edited := slices.Clone(lines)
	edited[10] = set(t, edited[10], "action", "test.edited")
	if rep, _ := VerifyExport(export(t, edited[10:]), "org_1", &head); rep.Problem == nil || rep.Problem.Seq != 11 || rep.Problem.Kind != Edited {
		t.Fatalf("an edited first event: %+v", rep.Problem)
	}
	// An export that starts later than the trail misses events.
	if rep, _ := VerifyExport(export(t, lines[12:]), "org_1", &head); rep.Problem == nil || !strings.Contains(rep.Problem.Message, "events 11–12 missing (deleted)") {
		t.Fatalf("events missing after the checkpoint: %+v", rep.Problem)
	}
	// An export taken before the purge passes through the checkpoint.
	if rep, err := VerifyExport(export(t, lines), "org_1", &head); err != nil || rep.Problem != nil || rep.Checked != 30 {
		t.Fatalf("an export from before the purge: %+v %v", rep, err)
	}
	other := Sign(key, "k1", "org_1", 30, recs[29].Hash, NewCheckpoint(10, recs[8].Hash, &at), time.Now())
	if rep, _ := VerifyExport(export(t, lines), "org_1", &other); rep.Problem == nil || rep.Problem.Kind != HeadMismatch || rep.Problem.Seq != 10 {
		t.Fatalf("a checkpoint the chain does not pass through: %+v", rep.Problem)
	}
	// Every event purged: an empty export, and the head is the checkpoint.
	whole := Sign(key, "k1", "org_1", 30, recs[29].Hash, NewCheckpoint(30, recs[29].Hash, &at), time.Now())
	if rep, err := VerifyExport(export(t, nil), "org_1", &whole); err != nil || rep.Problem != nil {
		t.Fatalf("a trail purged whole: %+v %v", rep, err)
	}
}

package auditchain

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// ExportReport is what VerifyExport found in an export.
type ExportReport struct {
	// First and Last are the lowest and highest seq in the export.
	First, Last int64
	// Checked is how many events were found good.
	Checked int64
	// Unchained is how many events of the export have no seq yet.
	Unchained int
	// Problem is the chain's first bad event (nil: none).
	Problem *Problem
}

// maxLine bounds one line of an export (an event is a few kilobytes).
const maxLine = 16 << 20

// VerifyExport recomputes an organisation's chain from an NDJSON export
// of its events (GET /organizations/{org_id}/events with Accept:
// application/x-ndjson, newest first; several exports may be
// concatenated, in any order). Events are checked in seq order from seq
// 1 (genesis before it), or, for an export that starts later, from its
// first event, taken as given. With a head (a signed head kept from GET
// /audit-chain, its signature checked by the caller), the chain must
// reach it: the event of seq head.Length has hash head.Head. A v2 head
// also says where the chain starts after retention's purge (its
// checkpoint): an export that starts right after the checkpoint is
// checked from the checkpoint's hash, one that starts later is missing
// events, and one that starts before it (taken before the purge) must
// pass through it. An export of a filtered query has gaps, which are
// reported as deleted events.
func VerifyExport(r io.Reader, orgID string, head *Head) (ExportReport, error) {
	var rep ExportReport
	type line struct {
		seq  int64
		text []byte
	}
	var lines []line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for n := 1; sc.Scan(); n++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		rec, err := RecordOf(text)
		if err != nil {
			return rep, fmt.Errorf("line %d: %w", n, err)
		}
		var org struct {
			OrgID string `json:"org_id"`
		}
		if err := json.Unmarshal(text, &org); err != nil || org.OrgID != orgID {
			return rep, fmt.Errorf("line %d: event %s is not of organization %s", n, rec.ID, orgID)
		}
		if rec.Seq == 0 {
			rep.Unchained++
			continue
		}
		lines = append(lines, line{rec.Seq, bytes.Clone(text)})
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("read the export: %w", err)
	}
	if len(lines) == 0 {
		if head != nil && head.Checkpoint != nil && head.Checkpoint.Seq > 0 && head.Checkpoint.Seq == head.Length {
			// Retention purged every event: the head is the checkpoint.
			if head.Checkpoint.Hash != head.Head {
				rep.Problem = &Problem{Kind: HeadMismatch, Message: "the signed head of a chain purged whole is not its checkpoint"}
			}
			return rep, nil
		}
		if head != nil && head.Length > 0 {
			rep.Problem = &Problem{Kind: Deleted, Seq: 1, Message: missing(1, head.Length) + ": the export has no chained event"}
		}
		return rep, nil
	}
	slices.SortStableFunc(lines, func(a, b line) int { return int(a.seq - b.seq) })
	rep.First, rep.Last = lines[0].seq, lines[len(lines)-1].seq
	v := NewVerifier()
	var cp *Checkpoint
	var cpHash []byte
	if head != nil && head.Checkpoint != nil && head.Checkpoint.Seq > 0 {
		var err error
		if cp = head.Checkpoint; cp.Seq > head.Length {
			return rep, fmt.Errorf("the signed head's checkpoint (seq %d) is past its length (%d)", cp.Seq, head.Length)
		}
		if cpHash, err = cp.HashBytes(); err != nil {
			return rep, err
		}
		if rep.First > cp.Seq+1 {
			rep.Problem = &Problem{Kind: Deleted, Seq: cp.Seq + 1, Message: missing(cp.Seq+1, rep.First-1) +
				fmt.Sprintf(": the trail starts after seq %d (the signed head's checkpoint), the export at seq %d", cp.Seq, rep.First)}
			return rep, nil
		}
		if rep.First == cp.Seq+1 {
			v = NewVerifierAfter(cp.Seq, cpHash)
		}
	}
	var headHash []byte
	for i, l := range lines {
		rec, _ := RecordOf(l.text)
		if head != nil && rec.Seq == head.Length && headHash == nil {
			headHash = rec.Hash
		}
		if cp != nil && rec.Seq == cp.Seq && !bytes.Equal(rec.Hash, cpHash) {
			rep.Checked = v.Checked()
			rep.Problem = &Problem{Kind: HeadMismatch, ID: rec.ID, Seq: rec.Seq,
				Message: fmt.Sprintf("event %s (seq %d): its hash is not the signed head's checkpoint: the chain was rewritten", rec.ID, rec.Seq)}
			return rep, nil
		}
		if i == 0 && rec.Seq > 1 && (cp == nil || rec.Seq <= cp.Seq) {
			v = NewVerifierAfter(rec.Seq, rec.Hash)
			v.lastID = rec.ID
			continue
		}
		p, err := v.Feed(rec)
		if err != nil {
			return rep, err
		}
		if p != nil {
			break
		}
	}
	p, err := v.Close()
	if err != nil {
		return rep, err
	}
	rep.Checked, rep.Problem = v.Checked(), p
	if rep.Problem != nil || head == nil {
		return rep, nil
	}
	want, err := head.HeadBytes()
	if err != nil {
		return rep, err
	}
	switch {
	case head.Length == 0:
		if !bytes.Equal(want, Genesis) {
			rep.Problem = &Problem{Kind: HeadMismatch, Message: "the signed head of an empty chain is not the genesis"}
		}
	case head.Length > rep.Last:
		rep.Problem = &Problem{Kind: Deleted, Seq: rep.Last + 1,
			Message: missing(rep.Last+1, head.Length) + fmt.Sprintf(": the signed head counts %d events, the export ends at seq %d", head.Length, rep.Last)}
	case head.Length < rep.First:
		return rep, fmt.Errorf("the signed head (length %d) is before the export's first event (seq %d)", head.Length, rep.First)
	case !bytes.Equal(headHash, want):
		rep.Problem = &Problem{Kind: HeadMismatch, Seq: head.Length,
			Message: fmt.Sprintf("the event of seq %d is not the signed head (signed at %s): the chain was rewritten", head.Length, head.SignedAt.Format("2006-01-02T15:04:05Z07:00"))}
	}
	return rep, nil
}

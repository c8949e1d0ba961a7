package auditchain

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Record is one event of a chain as the verifier reads it: its id, its
// seq and hash as stored, and the rest of its JSON, from which its
// canonical form is made.
type Record struct {
	ID   string
	Seq  int64
	Hash []byte
	// members are the event's JSON object's members.
	members map[string]json.RawMessage
}

// RecordOf reads an event given as the JSON object the API shows (a line
// of an export). An event without a seq is one not chained yet (Seq 0).
func RecordOf(event []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(event, &r.members); err != nil || r.members == nil {
		return r, errors.New("an event is a JSON object")
	}
	if err := json.Unmarshal(r.members["id"], &r.ID); err != nil || r.ID == "" {
		return r, errors.New("the event has no id")
	}
	if raw, ok := r.members["seq"]; ok {
		if err := json.Unmarshal(raw, &r.Seq); err != nil || r.Seq < 1 {
			return r, fmt.Errorf("event %s: seq %s is not a positive integer", r.ID, raw)
		}
	}
	if raw, ok := r.members["hash"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return r, fmt.Errorf("event %s: hash is not a string", r.ID)
		}
		if b, err := hex.DecodeString(s); err == nil && len(b) == HashSize {
			r.Hash = b
		} else {
			return r, fmt.Errorf("event %s: hash %q is not %d bytes in hex", r.ID, s, HashSize)
		}
	}
	return r, nil
}

// Canonical is the record's canonical form (Canonical of its JSON).
func (r Record) Canonical() ([]byte, error) { return r.canonicalAt(r.Seq) }

// canonicalAt is the canonical form the record would have at seq.
func (r Record) canonicalAt(seq int64) ([]byte, error) {
	m := make(map[string]json.RawMessage, len(r.members))
	for k, v := range r.members {
		m[k] = v
	}
	delete(m, "hash")
	m["seq"] = json.RawMessage(strconv.FormatInt(seq, 10))
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return CanonicalJSON(b)
}

// Kind is what is wrong with a chain.
type Kind string

// The kinds of problem the verifier names.
const (
	// Edited: an event's hash does not match its content.
	Edited Kind = "edited"
	// Deleted: seqs are missing (in the trail, or at its end against the
	// head).
	Deleted Kind = "deleted"
	// Reordered: an event's content chains at another place than its own.
	Reordered Kind = "reordered"
	// Duplicated: two events have one seq.
	Duplicated Kind = "duplicated"
	// HeadMismatch: the last event is not the chain's head.
	HeadMismatch Kind = "head"
)

// Problem is the first bad event of a chain, and what is wrong with it.
type Problem struct {
	Kind    Kind
	ID      string // "" for events missing
	Seq     int64
	Message string
}

func (p *Problem) Error() string { return p.Message }

// window is how many events before and after a bad one the verifier looks
// at to tell a moved event (reordered) from an edited one.
const window = 64

// Verifier recomputes a chain fed to it in seq order, a batch at a time,
// and stops at its first problem.
type Verifier struct {
	prev    []byte
	last    int64
	lastID  string
	checked int64
	// recent are the hashes of the last events checked (seq → hash), and
	// pending the events fed and not checked yet: the window around a
	// bad event.
	recent  map[int64][]byte
	pending []Record
	problem *Problem
}

// NewVerifier checks a chain from its first event (genesis before it).
func NewVerifier() *Verifier { return NewVerifierAfter(0, Genesis) }

// NewVerifierAfter checks a chain from seq after+1, the event at after
// having hash prev (a chain whose beginning is not at hand).
func NewVerifierAfter(after int64, prev []byte) *Verifier {
	return &Verifier{prev: prev, last: after, recent: map[int64][]byte{after: prev}}
}

// Feed checks events, in seq order; it holds back the last few until the
// next batch or Close (the window after a bad event). It returns the
// chain's first problem once found, and then checks nothing more.
func (v *Verifier) Feed(rs ...Record) (*Problem, error) {
	v.pending = append(v.pending, rs...)
	return v.check(window)
}

// Close checks the events held back; it returns the chain's first
// problem, if any.
func (v *Verifier) Close() (*Problem, error) { return v.check(0) }

// Checked is how many events were found good; Last the seq and hash of
// the last.
func (v *Verifier) Checked() int64 { return v.checked }

// Last is the seq and hash of the last event found good (the anchor
// while none was).
func (v *Verifier) Last() (int64, []byte) { return v.last, v.prev }

func (v *Verifier) check(keep int) (*Problem, error) {
	for v.problem == nil && len(v.pending) > keep {
		r := v.pending[0]
		p, err := v.checkOne(r)
		if err != nil {
			return nil, err
		}
		if p != nil {
			v.problem = p
			break
		}
		v.pending = v.pending[1:]
		v.prev, v.last, v.lastID = r.Hash, r.Seq, r.ID
		v.checked++
		v.recent[r.Seq] = r.Hash
		delete(v.recent, r.Seq-window)
	}
	return v.problem, nil
}

func (v *Verifier) checkOne(r Record) (*Problem, error) {
	switch {
	case r.Seq == v.last && v.lastID != "":
		return &Problem{Kind: Duplicated, ID: r.ID, Seq: r.Seq,
			Message: fmt.Sprintf("events %s and %s both have seq %d (duplicated)", v.lastID, r.ID, r.Seq)}, nil
	case r.Seq <= v.last:
		return &Problem{Kind: Reordered, ID: r.ID, Seq: r.Seq,
			Message: fmt.Sprintf("event %s (seq %d) comes after seq %d (reordered)", r.ID, r.Seq, v.last)}, nil
	case r.Seq > v.last+1:
		return &Problem{Kind: Deleted, Seq: v.last + 1, Message: missing(v.last+1, r.Seq-1) +
			fmt.Sprintf(": the chain goes from seq %d to event %s (seq %d)", v.last, r.ID, r.Seq)}, nil
	}
	c, err := r.Canonical()
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", r.ID, err)
	}
	if bytes.Equal(Link(v.prev, c), r.Hash) {
		return nil, nil
	}
	if was, ok, err := v.movedFrom(r); err != nil {
		return nil, err
	} else if ok && was != r.Seq {
		return &Problem{Kind: Reordered, ID: r.ID, Seq: r.Seq,
			Message: fmt.Sprintf("event %s (seq %d): its hash says it was seq %d (reordered)", r.ID, r.Seq, was)}, nil
	} else if ok {
		return &Problem{Kind: Reordered, ID: r.ID, Seq: r.Seq,
			Message: fmt.Sprintf("event %s (seq %d): it was chained after another event than seq %d (reordered)", r.ID, r.Seq, r.Seq-1)}, nil
	}
	return &Problem{Kind: Edited, ID: r.ID, Seq: r.Seq,
		Message: fmt.Sprintf("event %s (seq %d): hash does not match its content (edited)", r.ID, r.Seq)}, nil
}

// movedFrom looks for the place a bad event's content was chained at: a
// seq near its own and the hash of an event near it as its predecessor,
// that give a hash one of those events has (its own, or the one now on
// the event that took its place).
func (v *Verifier) movedFrom(r Record) (int64, bool, error) {
	hashes := map[string]bool{}
	var prevs [][]byte
	for _, h := range v.recent {
		prevs = append(prevs, h)
		hashes[string(h)] = true
	}
	for _, p := range v.pending {
		if p.Hash != nil {
			prevs = append(prevs, p.Hash)
			hashes[string(p.Hash)] = true
		}
	}
	for s := max(1, r.Seq-window); s <= r.Seq+window; s++ {
		c, err := r.canonicalAt(s)
		if err != nil {
			return 0, false, fmt.Errorf("event %s: %w", r.ID, err)
		}
		for _, p := range prevs {
			if hashes[string(Link(p, c))] {
				return s, true, nil
			}
		}
	}
	return 0, false, nil
}

// CheckHead compares the chain checked so far, wholly (Close first), with
// its head: length events, the last's hash head.
func (v *Verifier) CheckHead(length int64, head []byte) *Problem {
	switch {
	case v.problem != nil:
		return v.problem
	case length > v.last:
		v.problem = &Problem{Kind: Deleted, Seq: v.last + 1,
			Message: missing(v.last+1, length) + fmt.Sprintf(": the head counts %d events, the trail ends at seq %d", length, v.last)}
	case length < v.last:
		v.problem = &Problem{Kind: HeadMismatch, ID: v.lastID, Seq: v.last,
			Message: fmt.Sprintf("the head counts %d events, but the trail goes on to seq %d (head rolled back, or events added)", length, v.last)}
	case !bytes.Equal(head, v.prev):
		v.problem = &Problem{Kind: HeadMismatch, ID: v.lastID, Seq: v.last,
			Message: fmt.Sprintf("event %s (seq %d): its hash is not the chain's head (head rewritten)", v.lastID, v.last)}
	}
	return v.problem
}

func missing(from, to int64) string {
	if from == to {
		return fmt.Sprintf("event %d missing (deleted)", from)
	}
	return fmt.Sprintf("events %d–%d missing (deleted)", from, to)
}

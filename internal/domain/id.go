package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Prefixes of the resource identifiers. An id is the prefix and a
// ULID, so ids sort by creation time and say what they name.
const (
	PrefixOrganization = "org_"
	PrefixTenant       = "tnt_"
	PrefixUser         = "usr_"
	PrefixMember       = "mem_"
	PrefixInvitation   = "inv_"
	PrefixEvent        = "evt_"
	PrefixOperation    = "op_"
	PrefixRequest      = "req_"
	PrefixServiceAcct  = "sa_"
	PrefixServiceToken = "sat_"
	PrefixExport       = "exp_" // an export of the audit trail running now
	PrefixSession      = "ses_"
	PrefixPasskey      = "pk_"
	PrefixAuditStream  = "ast_"
	PrefixDelivery     = "asd_" // an audit stream's delivery attempt
)

// NewID returns a new identifier with the prefix, from the current time and
// crypto/rand entropy.
func NewID(prefix string) string {
	return prefix + ulid.MustNew(ulid.Timestamp(time.Now()), rand.Reader).String()
}

// ValidID reports whether s is an identifier with the prefix.
func ValidID(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) != ulid.EncodedSize {
		return false
	}
	_, err := ulid.ParseStrict(rest)
	return err == nil
}

// DerivedID returns the identifier with the prefix that the parts name,
// the same every time: an id a retry must reuse (a tenant's, from its
// creation's workflow id; an operation's, from its workflow id and update
// id) is derived from what every attempt carries, never minted again. Any
// 128 bits are a valid ULID; a derived id does not sort by time.
func DerivedID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		// Length-prefixed, so ("ab","c") and ("a","bc") differ.
		_, _ = fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	var id ulid.ULID
	copy(id[:], h.Sum(nil))
	return prefix + id.String()
}

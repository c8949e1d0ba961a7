package domain

import (
	"crypto/rand"
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

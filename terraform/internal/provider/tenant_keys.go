package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The Idempotency-Keys of the tenant resource's mutations. Each is derived
// from what an apply that was stopped half-way and then run again sees in
// the same way both times, never drawn at random: the re-run sends the key
// the first run sent, and the server answers it as it answered the first
// (for a creation, with the tenant that request made) instead of acting a
// second time.
//
// A creation's key is the organisation, the tenant's name, environment,
// region (when the configuration names one) and lifetime, and a generation: generation 0 is the first tenant this
// configuration makes; once that tenant has ended (decommissioned, failed,
// or being decommissioned), the next creation of the same configuration
// uses generation 1, and so on. The server names a tenant's saga after the
// key that created it (tenant/<org_id>/<key>, the tenant's workflow_id), so
// the provider can tell the tenant its own request made from any other one
// of the same name: only that one is adopted.
//
// A transition's key (suspend, resume, restore, decommission, lifetime) is
// the tenant, the transition and the tenant's updated_at as read just
// before asking: a re-run that finds the tenant unchanged asks again with
// the same key, and one that finds it changed by the first run's request
// sees the operation it started and waits for it instead of asking.

// keyHash is the hex SHA-256 of the parts, each length-prefixed so no two
// lists of parts share a hash.
func keyHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		_, _ = fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:40]
}

// creationKey is the Idempotency-Key of a tenant's creation.
// A configuration without a region has the key it had before tenants had
// regions, so an apply of it still adopts what an earlier run created.
func creationKey(orgID, name, environment string, region *string, expiresIn *int64, generation int) string {
	lifetime := "none"
	if expiresIn != nil {
		lifetime = strconv.FormatInt(*expiresIn, 10)
	}
	if region != nil {
		return "tf-create-" + keyHash(orgID, name, environment, "region="+*region, lifetime, strconv.Itoa(generation))
	}
	return "tf-create-" + keyHash(orgID, name, environment, lifetime, strconv.Itoa(generation))
}

// transitionKey is the Idempotency-Key of a request on an existing tenant.
func transitionKey(tenantID, what string, updatedAt time.Time, extra ...string) string {
	parts := append([]string{tenantID, what, updatedAt.UTC().Format(time.RFC3339Nano)}, extra...)
	return "tf-" + what + "-" + keyHash(parts...)
}

// workflowID is the saga the server runs for a creation's key: a tenant
// whose workflow_id is this one was made by a request carrying the key.
func workflowID(orgID, key string) string {
	return "tenant/" + orgID + "/" + key
}

// creationKeyOf returns the key inside a tenant's workflow id.
func creationKeyOf(orgID, workflowID string) (string, bool) {
	return strings.CutPrefix(workflowID, "tenant/"+orgID+"/")
}

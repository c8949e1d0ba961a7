package provider

import (
	"regexp"
	"testing"
	"time"
)

// idempotencyKeyPattern is the server's rule for an Idempotency-Key (it is
// a Temporal workflow or update id).
var idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// TestKeysAreStableDistinctAndAccepted: the same inputs give the same key,
// any change gives another, and every key is one the server takes.
func TestKeysAreStableDistinctAndAccepted(t *testing.T) {
	hour := int64(3600)
	eu, us := "eu", "us"
	at := time.Date(2026, 12, 3, 21, 0, 0, 123456000, time.UTC)
	keys := map[string]string{
		"create":                creationKey("org_1", "shop", "prod", nil, nil, 0),
		"create, generation 1":  creationKey("org_1", "shop", "prod", nil, nil, 1),
		"create, other org":     creationKey("org_2", "shop", "prod", nil, nil, 0),
		"create, other env":     creationKey("org_1", "shop", "staging", nil, nil, 0),
		"create, with lifetime": creationKey("org_1", "shop", "prod", nil, &hour, 0),
		"create, name shifted":  creationKey("org_1", "shopp", "rod", nil, nil, 0),
		"create, in eu":         creationKey("org_1", "shop", "prod", &eu, nil, 0),
		"create, in us":         creationKey("org_1", "shop", "prod", &us, nil, 0),
		"suspend":               transitionKey("tnt_1", "suspend", at),
		"suspend, later":        transitionKey("tnt_1", "suspend", at.Add(time.Microsecond)),
		"resume":                transitionKey("tnt_1", "resume", at),
		"lifetime 3600":         transitionKey("tnt_1", "lifetime", at, "3600"),
		"lifetime none":         transitionKey("tnt_1", "lifetime", at, "none"),
	}
	seen := map[string]string{}
	for what, k := range keys {
		if !idempotencyKeyPattern.MatchString(k) {
			t.Errorf("%s: the server refuses key %q", what, k)
		}
		if other, ok := seen[k]; ok {
			t.Errorf("%s and %s share key %s", what, other, k)
		}
		seen[k] = what
	}
	if creationKey("org_1", "shop", "prod", nil, &hour, 3) != creationKey("org_1", "shop", "prod", nil, &hour, 3) {
		t.Error("a creation's key changes between two runs")
	}
	// A configuration without a region keeps the key it had before
	// tenants had regions (the hash of its five parts), so an apply
	// stopped before the provider knew regions is still adopted.
	if got, want := creationKey("org_1", "shop", "prod", nil, nil, 0), "tf-create-"+keyHash("org_1", "shop", "prod", "none", "0"); got != want {
		t.Errorf("a creation without a region has key %s, before regions it was %s", got, want)
	}
	// The same instant in another zone is the same tenant change.
	if transitionKey("tnt_1", "suspend", at) != transitionKey("tnt_1", "suspend", at.In(time.FixedZone("x", 3600))) {
		t.Error("a transition's key depends on the zone updated_at is read in")
	}
	k := creationKey("org_1", "shop", "prod", nil, nil, 0)
	if got, ok := creationKeyOf("org_1", workflowID("org_1", k)); !ok || got != k {
		t.Errorf("the key of workflow %s is %q", workflowID("org_1", k), got)
	}
}

package store_test

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// TestTheLiveTenantIndexesHoldTheLifecyclesEndedStates: the partial unique
// indexes that free an ended tenant's name and hostname (migrations) must
// say what domain.State.Ended says, as the queries do.
func TestTheLiveTenantIndexesHoldTheLifecyclesEndedStates(t *testing.T) {
	want := []string{}
	for _, s := range domain.EndedStates() {
		want = append(want, string(s))
	}
	slices.Sort(want)
	literal := regexp.MustCompile(`'([a-z_]+)'`)
	states := func(sql string) []string {
		out := []string{}
		for _, m := range literal.FindAllStringSubmatch(sql, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	if got := states(store.NotEnded("state")); !slices.Equal(got, want) {
		t.Errorf("the queries' condition names %v, want %v", got, want)
	}
	for _, index := range []string{"tenants_live_name_key", "tenants_live_hostname_key"} {
		var def string
		if err := testDB.NewRaw("SELECT indexdef FROM pg_indexes WHERE indexname = ?", index).Scan(context.Background(), &def); err != nil {
			t.Fatalf("%s: %v", index, err)
		}
		if got := states(def); !slices.Equal(got, want) {
			t.Errorf("%s holds %v (%s), want %v", index, got, def, want)
		}
	}
}

package integration

import (
	"context"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestASuspendWhoseUpdateTemporalLostAfterItsRowWasWrittenIsCarriedOutOnRetry
// performs the lost update of a transition on the production shape: the
// update's first write waits on the tenant's row while Temporal is killed,
// and commits once the row is released, while Temporal is down: the
// workflow task that accepted the update never completes, and Temporal,
// started again, has forgotten the update while Postgres holds its
// operation. The client's retry with its Idempotency-Key must get the
// suspension carried out, and the tenant must be movable afterwards.
func TestASuspendWhoseUpdateTemporalLostAfterItsRowWasWrittenIsCarriedOutOnRetry(t *testing.T) {
	s := startShape(t)
	d := signInDev(t, s.apiAddrs[0])
	id, _ := d.createTenant("lost-update")
	d.waitState(id, "active")
	ctx := context.Background()

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM tenants WHERE id = ? FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	first := make(chan int, 1)
	go func() {
		code, _, err := sendJSON(&http.Client{Timeout: 20 * time.Second}, "POST", d.base+"/organizations/"+d.org+"/tenants/"+id+"/suspend", d.token, "lost-suspend", nil)
		if err != nil {
			code = 0
		}
		first <- code
	}()
	eventually(t, func() bool {
		var waiting int
		err := s.db.NewRaw("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'tenants'::regclass").Scan(ctx, &waiting)
		return err == nil && waiting >= 1
	})
	// Temporal is down longer than the API waits, so no retry of the
	// client library delivers the update again; the row is released while
	// it is down, so the write commits in a workflow task Temporal never
	// sees completed.
	began := time.Now()
	s.temporal.stop(t, syscall.SIGKILL)
	time.Sleep(3 * time.Second)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	code := <-first
	if code == 202 {
		t.Fatalf("the first attempt was answered 202 while Temporal was down")
	}
	eventually(t, func() bool {
		var n int
		err := s.db.NewRaw("SELECT count(*) FROM operations WHERE tenant_id = ? AND kind = 'suspend'", id).Scan(ctx, &n)
		return err == nil && n == 1
	})
	s.temporal = startProcess(s.root, os.Environ(), s.cli, s.temporalArgs...)
	t.Logf("first attempt answered %d; its operation written while Temporal was down; Temporal back after %s", code, time.Since(began).Round(time.Millisecond))

	var op map[string]any
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, out := d.doKey("POST", "/organizations/"+d.org+"/tenants/"+id+"/suspend", "lost-suspend", nil)
		if code == 202 {
			op = out["data"].(map[string]any)["operation"].(map[string]any)
			break
		}
		if code != 503 && code != 0 {
			t.Fatalf("retry of the suspend: %d %v", code, out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retry was never answered: last %d %v", code, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	d.waitState(id, "suspended")
	var status string
	var running int
	if err := s.db.NewRaw("SELECT status FROM operations WHERE id = ?", op["id"]).Scan(ctx, &status); err != nil {
		t.Fatal(err)
	}
	if err := s.db.NewRaw("SELECT count(*) FROM operations WHERE tenant_id = ? AND status IN ('running', 'stuck')", id).Scan(ctx, &running); err != nil {
		t.Fatal(err)
	}
	if status != "succeeded" || running != 0 {
		t.Fatalf("the retried suspend's operation is %s, %d operations still open", status, running)
	}
	if n := d.countEvents(id, "tenant.suspend_requested"); n != 1 {
		t.Errorf("%d suspend_requested events, want 1", n)
	}
	code, out := d.doKey("POST", "/organizations/"+d.org+"/tenants/"+id+"/resume", "after-lost", nil)
	if code != 202 {
		t.Fatalf("resume after the lost update: %d %v", code, out)
	}
	d.waitState(id, "active")
}

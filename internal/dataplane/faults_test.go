package dataplane

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
)

// recorder is a Plane that records the steps that reached it.
type recorder struct {
	Plane
	calls []string
}

func (r *recorder) CreateSchema(context.Context, Ref) error {
	r.calls = append(r.calls, "schema")
	return nil
}

func (r *recorder) CreateKeys(context.Context, Ref) error {
	r.calls = append(r.calls, "keys")
	return nil
}

func TestFaultDrills(t *testing.T) {
	a := Ref{TenantID: "tnt_A"}
	b := Ref{TenantID: "tnt_B"}
	t.Run("fail:N fails the first N attempts of each tenant, then passes", func(t *testing.T) {
		inner := &recorder{}
		f := &Faulty{Inner: inner, Faults: map[domain.Step]Fault{"schema": {Fail: true, Count: 2}}}
		var got []bool
		for _, ref := range []Ref{a, a, a, b, b, b} {
			got = append(got, f.CreateSchema(context.Background(), ref) == nil)
		}
		want := []bool{false, false, true, false, false, true}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("attempt outcomes = %v, want %v", got, want)
			}
		}
		if len(inner.calls) != 2 {
			t.Fatalf("the inner data plane saw %d calls, want 2", len(inner.calls))
		}
	})
	t.Run("fail fails every attempt with ErrInjected", func(t *testing.T) {
		f := &Faulty{Inner: &recorder{}, Faults: map[domain.Step]Fault{"keys": {Fail: true}}}
		for range 5 {
			var inj ErrInjected
			if err := f.CreateKeys(context.Background(), a); !errors.As(err, &inj) || inj.Step != "keys" {
				t.Fatalf("err = %v", err)
			}
		}
	})
	t.Run("delay waits, and gives up when the context ends", func(t *testing.T) {
		f := &Faulty{Inner: &recorder{}, Faults: map[domain.Step]Fault{"schema": {Delay: time.Hour}}}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := f.CreateSchema(ctx, a); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("steps without a fault pass through", func(t *testing.T) {
		inner := &recorder{}
		f := &Faulty{Inner: inner, Faults: map[domain.Step]Fault{"route": {Fail: true}}}
		if err := f.CreateSchema(context.Background(), a); err != nil || len(inner.calls) != 1 {
			t.Fatalf("err = %v, calls = %v", err, inner.calls)
		}
	})
}

package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// BenchmarkWriteAnAuditEvent is the price of the chain: each transaction
// writes one event of one organisation, chained (store.InsertEvent: lock
// the head, then the event and the head in one statement) or as it was
// written before the chain (one INSERT).
func BenchmarkWriteAnAuditEvent(b *testing.B) {
	ctx := context.Background()
	data := json.RawMessage(`{"before":{"name":"Acme"},"after":{"name":"Acme Corp"}}`)
	for _, bc := range []struct {
		name  string
		write func(ctx context.Context, tx bun.Tx, ev *store.AuditEvent) error
	}{
		{"chained", func(ctx context.Context, tx bun.Tx, ev *store.AuditEvent) error {
			_, err := store.InsertEvent(ctx, tx, ev)
			return err
		}},
		{"unchained", func(ctx context.Context, tx bun.Tx, ev *store.AuditEvent) error {
			ev.ID = domain.NewID(domain.PrefixEvent)
			_, err := tx.NewInsert().Model(ev).On("CONFLICT (dedup_key) DO NOTHING").Exec(ctx)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			org := newOrg(b)
			for b.Loop() {
				ev := &store.AuditEvent{OrgID: org.ID, Action: "organization.updated", ActorType: "member", ActorID: "mem_bench",
					TargetType: "organization", TargetID: org.ID, Data: data}
				if err := testDB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return bc.write(ctx, tx, ev) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

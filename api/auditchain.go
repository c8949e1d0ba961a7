package api

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/auditchain"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// auditChainKeysPath is where the public keys that sign audit chains'
// heads are published, without a token.
const auditChainKeysPath = "/api/v1/audit-chain/keys"

// auditChainKeys are the public keys of every key of the ring, the
// current (the one that signs) first: a head signed before a rotation
// verifies while its key is in the ring.
type auditChainKeys struct {
	Keys []auditchain.PublicKey `json:"keys"`
}

// auditChainHead is the organisation's chain head, signed, whether
// events of it are not chained yet, and how far back its trail goes.
type auditChainHead struct {
	auditchain.Head
	// Unchained: events written by an older release during an upgrade
	// are not in the chain yet (the next event, or the workers' sweep
	// within a minute, chains them).
	Unchained bool `json:"unchained,omitempty"`
	// Retention is how long the trail is kept and where it starts; not
	// signed (the checkpoint is).
	Retention auditRetention `json:"retention"`
}

// auditRetention says how far back an organisation's trail goes.
type auditRetention struct {
	Plan string `json:"plan"`
	Days int    `json:"audit_retention_days" doc:"How long the organisation's plan keeps its audit events; older ones are purged daily, oldest first, once the audit streams that are active or failing have delivered them (they wait at most 7 days for a stream)."`
	// StartsAt is when the oldest event kept occurred.
	StartsAt *time.Time `json:"trail_starts_at" doc:"When the oldest event kept occurred (null while there is none): the trail goes back to here. Events before it, up to checkpoint.seq, were purged by retention."`
}

// getAuditChain signs the head of the organisation's chain now, with the
// current key of the ring. A service account limited to environments
// reads only part of the trail, so it has no use for the head of the
// whole and is refused it.
func (s *Server) getAuditChain(c *fiber.Ctx, who *caller) error {
	if len(who.environments()) > 0 {
		return domain.Errorf(domain.CodeForbidden, "this service account reads the events of its environments only; the audit chain's head covers every event of the organization")
	}
	h, err := store.ReadChainHead(c.UserContext(), s.db, who.OrgID)
	if err != nil {
		return err
	}
	id := s.keys.Current()
	key, err := s.keys.SigningKey(id, auditchain.SigningPurpose)
	if err != nil {
		return err
	}
	cp := auditchain.NewCheckpoint(h.Checkpoint.Seq, h.Checkpoint.Hash, h.Checkpoint.OccurredAt)
	return writeData(c, fiber.StatusOK, auditChainHead{
		Head:      auditchain.Sign(key, id, who.OrgID, h.Length, h.Head, cp, time.Now()),
		Unchained: h.Backlog,
		Retention: auditRetention{Plan: who.Org.PlanID, Days: h.RetentionDays, StartsAt: h.StartsAt},
	})
}

// getAuditChainKeys publishes the public keys of audit chains' heads.
func (s *Server) getAuditChainKeys(c *fiber.Ctx, _ *caller) error {
	out := auditChainKeys{Keys: []auditchain.PublicKey{}}
	for _, id := range s.keys.IDs() {
		key, err := s.keys.SigningKey(id, auditchain.SigningPurpose)
		if err != nil {
			return err
		}
		out.Keys = append(out.Keys, auditchain.PublicKeyOf(id, key))
	}
	return writeData(c, fiber.StatusOK, out)
}

package api

import (
	"bytes"
	"encoding/hex"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// sessionView is one of the caller's sessions: when and where it began and
// was last used. Its token (or the token's hash) is never shown.
type sessionView struct {
	ID            string    `json:"id"`
	Current       bool      `json:"current" doc:"Whether this is the session of the request's own token."`
	CreatedAt     time.Time `json:"created_at"`
	LastUsedAt    time.Time `json:"last_used_at" doc:"When a request last came with the session's token, to the minute."`
	ExpiresAt     time.Time `json:"expires_at"`
	ClientAddress string    `json:"client_address" doc:"The address that signed in."`
	UserAgent     string    `json:"user_agent" doc:"The browser or client that signed in, as it named itself."`
}

// listSessions lists the caller's own sessions that neither ended nor
// expired.
func (s *Server) listSessions(c *fiber.Ctx, who *caller) error {
	ss, err := store.ActiveSessions(c.UserContext(), s.db, who.UserID)
	if err != nil {
		return err
	}
	views := make([]sessionView, len(ss))
	for i, x := range ss {
		views[i] = sessionView{ID: x.ID, Current: bytes.Equal(x.TokenHash, who.TokenHash), CreatedAt: x.CreatedAt,
			LastUsedAt: x.LastUsedAt, ExpiresAt: x.ExpiresAt, ClientAddress: x.ClientAddr, UserAgent: x.UserAgent}
	}
	return writeList(c, views, "", false)
}

type endSessionsResponse struct {
	Ended int `json:"ended" doc:"How many sessions this request ended."`
}

// endSession ends one of the caller's sessions (their own current one
// too: that is signing out).
func (s *Server) endSession(c *fiber.Ctx, who *caller) error {
	id := c.Params("session_id")
	if !domain.ValidID(domain.PrefixSession, id) && !validLegacySessionID(id) {
		return domain.Errorf(domain.CodeNotFound, "no such session")
	}
	n, err := s.endSessions(c, who, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return domain.Errorf(domain.CodeNotFound, "no such session")
	}
	return writeData(c, fiber.StatusOK, endSessionsResponse{Ended: n})
}

// endOtherSessions ends every session of the caller but this one.
func (s *Server) endOtherSessions(c *fiber.Ctx, who *caller) error {
	n, err := s.endSessions(c, who, "")
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, endSessionsResponse{Ended: n})
}

func (s *Server) endSessions(c *fiber.Ctx, who *caller, id string) (int, error) {
	ctx := c.UserContext()
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return 0, err
	}
	return store.EndSessions(ctx, s.db, user, id, who.TokenHash, s.eventBase(c, nil))
}

// validLegacySessionID is the id the migration gave sessions made before
// ids: ses_ and an MD5 in hex.
func validLegacySessionID(id string) bool {
	digest, ok := strings.CutPrefix(id, domain.PrefixSession)
	if !ok || len(digest) != 32 {
		return false
	}
	_, err := hex.DecodeString(digest)
	return err == nil
}

// listMyEvents are the caller's own account events (signing in and out, a
// password reset, a session ended), in every organisation of theirs that
// recorded them, newest first.
func (s *Server) listMyEvents(c *fiber.Ctx, who *caller) error {
	before, limit, err := page(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	ms, err := store.MembershipsOf(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	orgs := make([]string, len(ms))
	for i, m := range ms {
		orgs[i] = m.OrgID
	}
	rows, err := store.ListUserEvents(ctx, s.db, who.UserID, orgs, before, limit)
	if err != nil {
		return err
	}
	views := make([]store.EventView, len(rows))
	for i, e := range rows {
		views[i] = e.View()
	}
	return writePage(c, views, limit, func(v store.EventView) store.Keyset { return store.Keyset{CreatedAt: v.OccurredAt, ID: v.ID} })
}

package api

import (
	"bufio"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

var actionFilterPattern = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)*(\.\*|\*)?$`)

func eventFilter(c *fiber.Ctx, orgID string) (store.EventFilter, error) {
	f := store.EventFilter{OrgID: orgID, Action: c.Query("action"), ActorID: c.Query("actor_id"), ActorType: c.Query("actor_type"), TargetID: c.Query("target_id")}
	var fe fields
	switch f.ActorType {
	case "", "member", "operator", "system", "service_account":
	default:
		fe.add("actor_type", "one of member, operator, system, service_account")
	}
	if f.Action != "" && (len(f.Action) > 100 || !actionFilterPattern.MatchString(f.Action)) {
		fe.add("action", "an action such as tenant.suspended, or a prefix such as tenant.*")
	}
	if len(f.ActorID) > 64 || domain.HasControl(f.ActorID) {
		fe.add("actor_id", "at most 64 characters, no control characters")
	}
	if len(f.TargetID) > 64 || domain.HasControl(f.TargetID) {
		fe.add("target_id", "at most 64 characters, no control characters")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if raw := c.Query(p.name); raw != "" {
			t, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				fe.add(p.name, "an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
			}
			*p.dst = t
		}
	}
	if len(fe) > 0 {
		return f, &domain.Error{Code: domain.CodeBadRequest, Message: "invalid query parameters", FieldErrors: fe}
	}
	return f, nil
}

// listEvents is the organisation's audit trail, newest first; with
// Accept: application/x-ndjson it streams every matching event, a page at a
// time, without holding them in memory.
func (s *Server) listEvents(c *fiber.Ctx, who *caller) error {
	f, err := eventFilter(c, who.OrgID)
	if err != nil {
		return err
	}
	f.Environments = who.environments()
	if strings.Contains(c.Get(fiber.HeaderAccept), "application/x-ndjson") {
		return s.streamEvents(c, f)
	}
	before, limit, err := page(c)
	if err != nil {
		return err
	}
	rows, err := store.ListEvents(c.UserContext(), s.db, f, before, limit)
	if err != nil {
		return err
	}
	views := make([]store.EventView, len(rows))
	for i, e := range rows {
		views[i] = e.View()
	}
	return writePage(c, views, limit, func(v store.EventView) store.Keyset { return store.Keyset{CreatedAt: v.OccurredAt, ID: v.ID} })
}

const (
	exportPage = 1000
	// exportStall is how long a client may take to accept a page of an
	// export. The server's write timeout bounds a whole response, and an
	// export of a large trail (12–26 s for a million events here) or to a
	// slow client takes longer than that while it keeps moving; each page
	// sent moves the connection's write deadline instead, so only a client
	// that stops reading is cut off.
	exportStall = 60 * time.Second
)

func (s *Server) streamEvents(c *fiber.Ctx, f store.EventFilter) error {
	log := s.log.With().Str("request_id", requestID(c)).Logger()
	// The first page is read before the status is sent, so a failing
	// database is an error envelope rather than an empty stream.
	first, err := store.ListEvents(c.UserContext(), s.db, f, store.Keyset{}, exportPage)
	if err != nil {
		return err
	}
	conn := c.Context().Conn()
	c.Set(fiber.HeaderContentType, "application/x-ndjson")
	c.Status(fiber.StatusOK).Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx := context.Background()
		enc := json.NewEncoder(w)
		rows := first
		for {
			more := len(rows) > exportPage
			if more {
				rows = rows[:exportPage]
			}
			for _, e := range rows {
				if err := enc.Encode(e.View()); err != nil {
					return // the client went away
				}
			}
			if err := w.Flush(); err != nil || !more {
				return
			}
			_ = conn.SetWriteDeadline(time.Now().Add(exportStall))
			last := rows[len(rows)-1]
			if rows, err = store.ListEvents(ctx, s.db, f, store.Keyset{CreatedAt: last.OccurredAt, ID: last.ID}, exportPage); err != nil {
				log.Error().Err(err).Msg("event export stopped")
				// Cut the connection: ending the chunked body cleanly
				// would make a partial export look complete.
				_ = conn.Close()
				return
			}
		}
	})
	return nil
}

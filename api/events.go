package api

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

var actionFilterPattern = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)*(\.\*|\*)?$`)

func eventFilter(c *fiber.Ctx, orgID string) (store.EventFilter, error) {
	f := store.EventFilter{OrgID: orgID, Action: c.Query("action"), ActorID: c.Query("actor_id"), ActorType: c.Query("actor_type"), TargetID: c.Query("target_id")}
	// The guard checked every parameter against the document
	// (queryErrors); the times are read here.
	var fe fields
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
// Accept: application/x-ndjson it streams the matching events, a page at a
// time, without holding them in memory (streamEvents).
func (s *Server) listEvents(c *fiber.Ctx, who *caller) error {
	f, err := eventFilter(c, who.OrgID)
	if err != nil {
		return err
	}
	f.Environments = who.environments()
	if strings.Contains(c.Get(fiber.HeaderAccept), "application/x-ndjson") {
		return s.streamEvents(c, who, f)
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
	// export of a large trail or to a slow client takes longer than that
	// while it keeps moving; each page sent moves the connection's write
	// deadline instead, so only a client that stops reading is cut off.
	exportStall = 60 * time.Second

	// An export is bounded like the pages it replaces (issue 23, finding
	// 5): it sends at most exportMax events (about 30 MB), and Next-Cursor
	// says where the next one starts; it spends one request of the
	// caller's budgets per exportCharge events (a page's worth), the first
	// charged by the guard, and stops early, at such a chunk's end, when a
	// budget is spent; at most exportsPerOrg run at once in an
	// organisation, exportsPerCaller per member or service account, so no
	// one caller holds them all.
	exportMax        = 50_000
	exportCharge     = maxLimit
	exportsPerOrg    = 2
	exportsPerCaller = 1
	// exportLease is how long an export's slot outlives its last page: an
	// API that died frees it after this.
	exportLease = 2 * exportStall
	// exportRetryAfter is the Retry-After of an export refused because the
	// organisation's (or the caller's) exports are running.
	exportRetryAfter = 5
)

// streamEvents exports the events of f after the request's cursor as
// NDJSON, within the bounds above: at most exportMax events and what the
// caller's budgets pay for. Where it stops before the end, Next-Cursor (a
// header, known before the first byte) is the cursor of its last event,
// to send as ?cursor= on the next export.
func (s *Server) streamEvents(c *fiber.Ctx, who *caller, f store.EventFilter) error {
	after, _, err := page(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	log := s.log.With().Str("request_id", requestID(c)).Logger()
	lease, err := store.StartExport(ctx, s.db, f.OrgID, who.exporter(), exportsPerOrg, exportsPerCaller, exportLease)
	if errors.Is(err, store.ErrExportsBusy) {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(exportRetryAfter))
		return domain.Errorf(domain.CodeRateLimited, "at most %d exports of the audit trail run at once in an organisation, %d per caller; retry in %d s",
			exportsPerOrg, exportsPerCaller, exportRetryAfter)
	}
	if err != nil {
		return err
	}
	end := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := store.EndExport(ctx, s.db, lease); err != nil {
			log.Warn().Err(err).Msg("export slot not given back; it expires")
		}
	}
	streaming := false
	defer func() {
		if !streaming {
			end()
		}
	}()

	// Where the export stops is known before it starts, so it is a header
	// every client reads (a trailer is lost on browsers and many HTTP
	// libraries).
	plan, err := store.PlanExport(ctx, s.db, f, after, exportCharge, exportMax)
	if err != nil {
		return err
	}
	chunks := (min(plan.Count, exportMax) + exportCharge - 1) / exportCharge
	paid := 1 + s.chargeAgain(c, max(chunks-1, 0))
	var stop *store.Keyset
	want := plan.Count
	if paid < chunks || plan.Count > exportMax {
		stop, want = &plan.Bounds[min(paid, chunks)-1], min(paid, chunks)*exportCharge
		c.Set("Next-Cursor", encodeCursor(cursorKeyOf(c), *stop))
	}
	// A spent budget shortens the export; its continuation is what is
	// refused (429) until RateLimit-Reset.
	c.Response().Header.Del(fiber.HeaderRetryAfter)

	// Where the trail starts: what retention purged, to which the first
	// event kept links.
	cp, err := store.ChainCheckpoint(ctx, s.db, f.OrgID)
	if err != nil {
		return err
	}
	c.Set("Audit-Trail-Starts-After", strconv.FormatInt(cp.Seq, 10))
	c.Set("Audit-Trail-Checkpoint", hex.EncodeToString(cp.Hash))
	// The first page is read before the status is sent, so a failing
	// database is an error envelope rather than an empty stream.
	first, err := store.ListEvents(ctx, s.db, f, after, pageFor(want, 0))
	if err != nil {
		return err
	}
	conn := c.Context().Conn()
	c.Set(fiber.HeaderContentType, "application/x-ndjson")
	streaming = true
	c.Status(fiber.StatusOK).Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer end()
		ctx := context.Background()
		enc := json.NewEncoder(w)
		rows, limit, sent := first, pageFor(want, 0), 0
		renewed := time.Now()
		for {
			more := len(rows) > limit
			if more {
				rows = rows[:limit]
			}
			if stop != nil {
				// Events written since the plan (late, in the range) may
				// move the stop: it is the keyset, not the count.
				n := len(rows)
				rows = slices.DeleteFunc(rows, func(e store.AuditEvent) bool { return olderThan(e, *stop) })
				more = more && len(rows) == n && !atKeyset(rows[len(rows)-1], *stop)
			}
			for _, e := range rows {
				if err := enc.Encode(e.View()); err != nil {
					return // the client went away
				}
			}
			sent += len(rows)
			if err := w.Flush(); err != nil || !more {
				return
			}
			_ = conn.SetWriteDeadline(time.Now().Add(exportStall))
			// Renewed a quarter of the way through, so a slot outlives a
			// stall of exportStall after any page, at a write per 30 s.
			if time.Since(renewed) > exportLease/4 {
				if err := store.RenewExport(ctx, s.db, lease, exportLease); err != nil {
					log.Warn().Err(err).Msg("export slot not renewed")
				}
				renewed = time.Now()
			}
			last := rows[len(rows)-1]
			limit = pageFor(want, sent)
			if rows, err = store.ListEvents(ctx, s.db, f, store.Keyset{CreatedAt: last.OccurredAt, ID: last.ID}, limit); err != nil {
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

// pageFor is the size of the export's next page: exportPage, or what is
// left of the want events when fewer (at least 1: events written late may
// still be in the range).
func pageFor(want, sent int) int { return min(exportPage, max(want-sent, 1)) }

// olderThan reports whether e comes after the keyset in the trail's order
// (newest first).
func olderThan(e store.AuditEvent, k store.Keyset) bool {
	return e.OccurredAt.Before(k.CreatedAt) || e.OccurredAt.Equal(k.CreatedAt) && e.ID < k.ID
}

func atKeyset(e store.AuditEvent, k store.Keyset) bool {
	return e.OccurredAt.Equal(k.CreatedAt) && e.ID == k.ID
}

// exporter is who runs an export, for its bound per caller.
func (c *caller) exporter() string {
	if c.ServiceAccount != nil {
		return "sa:" + c.ServiceAccount.ID
	}
	return "member:" + c.MemberID
}

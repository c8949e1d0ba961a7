package api

import (
	"fmt"
	"regexp"
	"runtime/debug"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/intelliauth/controlplane/internal/domain"
)

const (
	headerRequestID = "X-Request-ID"
	localRequestID  = "request_id"
	localUnmatched  = "unmatched_route"
)

// A caller's request id is kept when it is short and plain; anything else is
// replaced, so it is safe in a log line, a workflow memo and an audit event.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// maxUserAgent bounds the User-Agent as it is read and recorded (sessions,
// audit events, tenants' requests).
const maxUserAgent = 512

// framing are the headers the server has already parsed to read the
// request; their values are not text anyone reads later.
var framing = []string{fiber.HeaderContentLength, fiber.HeaderConnection, fiber.HeaderTransferEncoding, fiber.HeaderTrailer}

// cleanHeaders is the edge every request header passes first: each value
// holding a control or format character, a NUL or bytes that are not
// UTF-8 is replaced by its domain.CleanText (and dropped when nothing is
// left of it), and the User-Agent is cut to maxUserAgent bytes. No
// handler, log line, audit event or session then reads what a client hid
// in a header (terminal escapes, a right-to-left override, a NUL that
// Postgres refuses). Identifiers are checked on the clean value (a
// request id is replaced unless plain, an Idempotency-Key refused) and
// addresses are parsed.
func cleanHeaders(c *fiber.Ctx) error {
	h := &c.Request().Header
	var dirty []string
	h.VisitAll(func(k, v []byte) {
		if !plainText(v) && !slices.Contains(dirty, string(k)) && !slices.Contains(framing, string(k)) {
			dirty = append(dirty, string(k))
		}
	})
	for _, k := range dirty {
		var clean []string
		for _, v := range h.PeekAll(k) {
			if v := domain.CleanText(string(v), 0); v != "" {
				clean = append(clean, v)
			}
		}
		h.Del(k)
		for _, v := range clean {
			h.Add(k, v)
		}
	}
	if ua := h.UserAgent(); len(ua) > maxUserAgent {
		h.SetUserAgent(domain.CleanText(string(ua), maxUserAgent))
	}
	return c.Next()
}

// plainText reports whether v is already clean: printable ASCII (the
// common case, checked byte by byte), or UTF-8 that CleanText leaves as
// it is.
func plainText(v []byte) bool {
	for _, b := range v {
		if b < 0x20 || b >= 0x7f {
			return domain.CleanText(string(v), 0) == string(v)
		}
	}
	return true
}

// userAgent is the request's User-Agent as it is recorded (sessions, audit
// events, tenants' requests), which cleanHeaders has made clean and cut.
func userAgent(c *fiber.Ctx) string { return c.Get(fiber.HeaderUserAgent) }

// withRequestID gives every request an id: the caller's X-Request-ID when
// valid, a new one otherwise. It is echoed in the response header and put,
// with a logger carrying it, into the request's context.
func (s *Server) withRequestID(c *fiber.Ctx) error {
	id := c.Get(headerRequestID)
	if !requestIDPattern.MatchString(id) {
		id = domain.NewID(domain.PrefixRequest)
	}
	c.Locals(localRequestID, id)
	c.Set(headerRequestID, id)
	// Answers carry tokens and tenants' data: no cache keeps them, and no
	// browser guesses their type.
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	l := s.log.With().Str("request_id", id).Logger()
	c.SetUserContext(l.WithContext(c.UserContext()))
	return c.Next()
}

// observe turns a handler's error into the error envelope, then writes the
// request's log line and metrics, so both see the status the client got.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		if werr := writeError(c, err); werr != nil {
			return werr
		}
	}
	elapsed := time.Since(start)
	status := c.Response().StatusCode()
	route := c.Route().Path
	if unmatched, _ := c.Locals(localUnmatched).(bool); unmatched {
		route = "unmatched"
	}
	s.metrics.observe(c.Method(), route, status, elapsed)

	l := zerolog.Ctx(c.UserContext())
	ev := l.Info()
	if status >= 500 {
		ev = l.Error()
	}
	ev.Str("method", c.Method()).
		Str("path", c.Path()).
		Str("route", route).
		Int("status", status).
		Dur("latency", elapsed).
		Str("client_addr", c.IP()).
		Msg("request")
	return nil
}

// recoverPanic turns a panic in a handler into INTERNAL_ERROR; the stack
// goes to the log line, never to the client.
func recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			zerolog.Ctx(c.UserContext()).Error().
				Str("panic", fmt.Sprint(r)).
				Str("stack", string(debug.Stack())).
				Msg("handler panicked")
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Next()
}

package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Cursors are opaque to clients: a keyset position (time and id) with an
// HMAC-SHA256 under a key the API replicas share (store.ServerKey),
// base64url-encoded. A cursor that was altered or made up is refused.
var cursorEnc = base64.RawURLEncoding

// cursorMACBytes is how much of the HMAC a cursor carries.
const cursorMACBytes = 16

func cursorMAC(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return m.Sum(nil)[:cursorMACBytes]
}

func encodeCursor(key []byte, k store.Keyset) string {
	payload := strconv.FormatInt(k.CreatedAt.UnixNano(), 36) + "|" + k.ID
	return cursorEnc.EncodeToString([]byte(payload)) + "." + cursorEnc.EncodeToString(cursorMAC(key, []byte(payload)))
}

func decodeCursor(key []byte, s string) (store.Keyset, bool) {
	p, sum, ok := strings.Cut(s, ".")
	if !ok || len(s) > 200 {
		return store.Keyset{}, false
	}
	payload, err1 := cursorEnc.DecodeString(p)
	got, err2 := cursorEnc.DecodeString(sum)
	if err1 != nil || err2 != nil || !hmac.Equal(got, cursorMAC(key, payload)) {
		return store.Keyset{}, false
	}
	ts, id, ok := strings.Cut(string(payload), "|")
	nanos, err := strconv.ParseInt(ts, 36, 64)
	if !ok || err != nil || id == "" || len(id) > 64 {
		return store.Keyset{}, false
	}
	return store.Keyset{CreatedAt: time.Unix(0, nanos).UTC(), ID: id}, true
}

const (
	defaultLimit = 50
	maxLimit     = 200
)

// cursorKey is the key that signs cursors, read once from the database
// (a random one of the process's own without a database, in unit tests).
type cursorKey struct {
	mu  sync.Mutex
	db  bun.IDB
	key []byte
}

func (k *cursorKey) get(ctx context.Context) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	if k.db == nil {
		k.key = make([]byte, 32)
		_, err := rand.Read(k.key)
		return k.key, err
	}
	key, err := store.ServerKey(ctx, k.db, "cursor")
	if err == nil {
		k.key = key
	}
	return key, err
}

const localCursorKey = "cursor_key"

// withCursorKey makes the cursor key available to the list handlers.
func (s *Server) withCursorKey(c *fiber.Ctx) error {
	key, err := s.cursors.get(c.UserContext())
	if err != nil {
		return err
	}
	c.Locals(localCursorKey, key)
	return c.Next()
}

func cursorKeyOf(c *fiber.Ctx) []byte {
	key, _ := c.Locals(localCursorKey).([]byte)
	return key
}

// page reads ?cursor= and ?limit= of a list.
func page(c *fiber.Ctx) (store.Keyset, int, error) {
	var fe fields
	limit := defaultLimit
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxLimit {
			fe.add("limit", "must be a whole number from 1 to 200")
		} else {
			limit = n
		}
	}
	var after store.Keyset
	if raw := c.Query("cursor"); raw != "" {
		k, ok := decodeCursor(cursorKeyOf(c), raw)
		if !ok {
			fe.add("cursor", "invalid cursor; use the cursor of the previous page as it was given")
		}
		after = k
	}
	if len(fe) > 0 {
		return after, 0, &domain.Error{Code: domain.CodeBadRequest, Message: "invalid query parameters", FieldErrors: fe}
	}
	return after, limit, nil
}

// writePage writes rows (fetched with limit+1) as one page, with the cursor
// of the last row shown when there are more.
func writePage[T any](c *fiber.Ctx, rows []T, limit int, key func(T) store.Keyset) error {
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	cursor := ""
	if more {
		cursor = encodeCursor(cursorKeyOf(c), key(rows[len(rows)-1]))
	}
	return writeList(c, rows, cursor, more)
}

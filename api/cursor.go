package api

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Cursors are opaque to clients: a keyset position (time and id) with a
// checksum, base64url-encoded. A cursor that was altered is refused.
var cursorEnc = base64.RawURLEncoding

func encodeCursor(k store.Keyset) string {
	payload := strconv.FormatInt(k.CreatedAt.UnixNano(), 36) + "|" + k.ID
	sum := sha256.Sum256([]byte(payload))
	return cursorEnc.EncodeToString([]byte(payload)) + "." + cursorEnc.EncodeToString(sum[:6])
}

func decodeCursor(s string) (store.Keyset, bool) {
	p, sum, ok := strings.Cut(s, ".")
	if !ok || len(s) > 200 {
		return store.Keyset{}, false
	}
	payload, err1 := cursorEnc.DecodeString(p)
	got, err2 := cursorEnc.DecodeString(sum)
	want := sha256.Sum256(payload)
	if err1 != nil || err2 != nil || string(got) != string(want[:6]) {
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
		k, ok := decodeCursor(raw)
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
		cursor = encodeCursor(key(rows[len(rows)-1]))
	}
	return writeList(c, rows, cursor, more)
}

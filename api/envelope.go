package api

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

// meta is the meta block of every success envelope; lists add the cursor of
// the next page and whether there is one.
type meta struct {
	RequestID string  `json:"request_id"`
	Timestamp string  `json:"timestamp"`
	Cursor    *string `json:"cursor,omitempty"`
	HasMore   *bool   `json:"has_more,omitempty"`
}

type envelope struct {
	Data any  `json:"data"`
	Meta meta `json:"meta"`
}

func newMeta(c *fiber.Ctx) meta {
	return meta{RequestID: requestID(c), Timestamp: time.Now().UTC().Format(time.RFC3339)}
}

// writeData writes data in the success envelope with the status.
func writeData(c *fiber.Ctx, status int, data any) error {
	return c.Status(status).JSON(envelope{Data: data, Meta: newMeta(c)})
}

// writeList writes one page of a list; cursor is empty on the last page.
func writeList[T any](c *fiber.Ctx, items []T, cursor string, hasMore bool) error {
	if items == nil {
		items = []T{}
	}
	m := newMeta(c)
	m.Cursor, m.HasMore = &cursor, &hasMore
	return c.Status(fiber.StatusOK).JSON(envelope{Data: items, Meta: m})
}

package api

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/intelliauth/controlplane/internal/store"
)

var fuzzKey = []byte("a fuzz key of thirty-two bytes!!")

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(fuzzKey, store.Keyset{CreatedAt: time.Unix(1700000000, 123456000), ID: "mem_01HZX"}))
	f.Add("")
	f.Add(".")
	f.Add("AAAA.AAAA")
	f.Add(strings.Repeat("A", 300))
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := decodeCursor(fuzzKey, s)
		if !ok {
			return
		}
		// What decodes re-encodes to a cursor that decodes the same.
		k2, ok2 := decodeCursor(fuzzKey, encodeCursor(fuzzKey, k))
		if !ok2 || !k2.CreatedAt.Equal(k.CreatedAt) || k2.ID != k.ID {
			t.Fatalf("round trip of %q: %+v vs %+v", s, k, k2)
		}
	})
}

// decodeServer is a server with POST /t/decode, which decodes an
// invitation request strictly and echoes it.
func decodeServer() *Server {
	s := New(Deps{Log: zerolog.New(io.Discard)})
	s.app.Post("/t/decode", func(c *fiber.Ctx) error {
		var req inviteRequest
		if err := decode(c, &req); err != nil {
			return err
		}
		return writeData(c, fiber.StatusOK, req)
	})
	return s
}

// FuzzDecodeBody sends arbitrary bodies and content types to a route that
// decodes strictly: the answer is 2xx or 4xx, never a 5xx or a panic.
func FuzzDecodeBody(f *testing.F) {
	s := decodeServer()
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"email":"a@b.test","role":"viewer"}`},
		{"application/json", `{"email":"a@b.test","role":"viewer"} {}`},
		{"application/json", `{"email":1}`},
		{"application/json", `[]`},
		{"application/json", `{"extra":true}`},
		{"application/json; charset=utf-8", `{"email":"x","role":"owner"}`},
		{"text/plain", `{}`},
		{"application/json", ``},
		{"application/json", `{"email":"\u0000","role":"\ud800"}`},
		{"application/json", `{"email":"a@b.test","role":"viewer","role":"owner"}`},
		{"application/json", `{"email":{"a":[{"a":1,"a":2}]}}`},
	} {
		f.Add(seed.ct, seed.body)
	}
	f.Fuzz(func(t *testing.T, ct, body string) {
		req := httptest.NewRequest("POST", "/t/decode", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := s.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode >= 500 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%d for %q %q: %s", resp.StatusCode, ct, body, b)
		}
	})
}

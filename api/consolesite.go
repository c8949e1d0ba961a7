package api

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/api/console"
)

// The console is a client of this API served from the same origin: its
// page at / and at each of its own paths, its files under /assets. It has
// no endpoint of its own; everything it shows comes from /api/v1.

// consoleCSP lets the console run only its own script files, load only its
// own style sheets and images, and talk only to this origin.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; " +
	"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// consolePages are the paths at which the console's page is served: the
// console routes them in the browser. Any other path is not the console's
// and is answered as an unknown route.
var consolePages = []string{"/", "/sign-in", "/invitations/accept", "/password-reset", "/sign-up", "/verify-email", "/account", "/orgs", "/orgs/*"}

// consoleTypes are the Content-Types of the built files, by extension.
var consoleTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".html": "text/html; charset=utf-8",
}

type consoleFile struct {
	path        string
	contentType string
	cache       string
	body        []byte
	// gzipped is body compressed once at start, sent to clients that
	// accept it.
	gzipped []byte
}

type consoleSite struct {
	page  []byte
	files []consoleFile
}

var builtConsole = sync.OnceValue(func() consoleSite {
	site, err := loadConsole(console.Dist)
	if err != nil {
		panic(err) // the embedded build is broken: a build error
	}
	return site
})

func loadConsole(files fs.FS) (consoleSite, error) {
	dist, err := fs.Sub(files, "dist")
	if err != nil {
		return consoleSite{}, err
	}
	var site consoleSite
	if site.page, err = fs.ReadFile(dist, "index.html"); err != nil {
		return consoleSite{}, fmt.Errorf("console page: %w", err)
	}
	err = fs.WalkDir(dist, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "index.html" {
			return err
		}
		body, err := fs.ReadFile(dist, name)
		if err != nil {
			return err
		}
		ct, ok := consoleTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("console file %s: no Content-Type for its extension", name)
		}
		// Files under assets/ are named by their content's hash.
		cache := "no-cache"
		if strings.HasPrefix(name, "assets/") {
			cache = "public, max-age=31536000, immutable"
		}
		gz, err := gzipped(body)
		if err != nil {
			return err
		}
		site.files = append(site.files, consoleFile{path: "/" + name, contentType: ct, cache: cache, body: body, gzipped: gz})
		return nil
	})
	return site, err
}

func (s *Server) mountConsole() {
	site := builtConsole()
	page := func(c *fiber.Ctx) error {
		consoleHeaders(c, "text/html; charset=utf-8", "no-cache")
		return c.Send(site.page)
	}
	for _, p := range consolePages {
		s.app.Get(p, page)
	}
	for _, f := range site.files {
		s.app.Get(f.path, func(c *fiber.Ctx) error {
			consoleHeaders(c, f.contentType, f.cache)
			c.Vary(fiber.HeaderAcceptEncoding)
			if c.AcceptsEncodings("gzip") == "gzip" {
				c.Set(fiber.HeaderContentEncoding, "gzip")
				return c.Send(f.gzipped)
			}
			return c.Send(f.body)
		})
	}
}

func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func consoleHeaders(c *fiber.Ctx, contentType, cacheControl string) {
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderCacheControl, cacheControl)
	c.Set(fiber.HeaderContentSecurityPolicy, consoleCSP)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
}

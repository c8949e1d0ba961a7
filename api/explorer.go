package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"sync"

	"github.com/gofiber/fiber/v2"
)

// The explorer is the /api/docs page of the API: Swagger UI, vendored in
// explorer/swagger-ui (see explorer/README.md), on the API's own OpenAPI
// document. Every file the page loads is embedded and served from here;
// nothing comes from another host.
const (
	explorerPath    = "/api/docs"
	explorerSpecURL = "/api/v1/openapi.json"
)

// explorerCSP lets the page run only scripts served as files from this
// origin and talk only to this origin. 'unsafe-inline' for styles is a
// margin: Swagger UI 5.35 rendered, authorised and tried requests without
// it, but style attributes can still arrive in markup, e.g. in the
// sanitised Markdown of a description. data: images are the icons of its
// stylesheet.
const explorerCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Asset URLs carry a hash of the assets, so they can be cached for a year
// and still change with the binary; the page itself is revalidated.
const (
	explorerAssetCache = "public, max-age=31536000, immutable"
	explorerPageCache  = "no-cache"
)

//go:embed explorer/index.html explorer/explorer.js explorer/explorer.css
//go:embed explorer/swagger-ui/swagger-ui-bundle.js explorer/swagger-ui/swagger-ui.css explorer/swagger-ui/favicon-32x32.png
var explorerFiles embed.FS

// explorerTypes are the Content-Types of the embedded assets, by extension;
// fixed here rather than taken from the system's MIME tables, which vary.
var explorerTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".png": "image/png",
}

type explorerAsset struct {
	name        string // relative to explorer/
	path        string // the URL path: explorerPath, the hash, name
	contentType string
	body        []byte
}

type explorerSite struct {
	page   []byte
	assets []explorerAsset
}

// explorer is read from the embedded files once per process.
var explorer = sync.OnceValue(func() explorerSite {
	site, err := loadExplorer(explorerFiles)
	if err != nil {
		panic(err) // the embedded files are broken: a build error
	}
	return site
})

func loadExplorer(files fs.FS) (explorerSite, error) {
	dir, err := fs.Sub(files, "explorer")
	if err != nil {
		return explorerSite{}, err
	}
	var site explorerSite
	sum := sha256.New()
	err = fs.WalkDir(dir, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "index.html" {
			return err
		}
		body, err := fs.ReadFile(dir, name)
		if err != nil {
			return err
		}
		ct, ok := explorerTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("explorer asset %s: no Content-Type for its extension", name)
		}
		fmt.Fprintf(sum, "%x  %s\n", sha256.Sum256(body), name)
		site.assets = append(site.assets, explorerAsset{name: name, contentType: ct, body: body})
		return nil
	})
	if err != nil {
		return explorerSite{}, err
	}
	base := explorerPath + "/" + hex.EncodeToString(sum.Sum(nil))[:16]
	for i := range site.assets {
		site.assets[i].path = base + "/" + site.assets[i].name
	}

	page, err := template.ParseFS(dir, "index.html")
	if err != nil {
		return explorerSite{}, fmt.Errorf("explorer page: %w", err)
	}
	var b bytes.Buffer
	if err := page.Execute(&b, struct{ Assets, SpecURL string }{base, explorerSpecURL}); err != nil {
		return explorerSite{}, fmt.Errorf("explorer page: %w", err)
	}
	site.page = b.Bytes()
	return site, nil
}

// mountExplorer serves the explorer page at /api/docs and its assets below
// it. Any other path below /api/docs is an unknown route, answered in the
// error envelope like every other.
func (s *Server) mountExplorer() {
	site := explorer()
	s.app.Get(explorerPath, func(c *fiber.Ctx) error {
		explorerHeaders(c, "text/html; charset=utf-8", explorerPageCache)
		return c.Send(site.page)
	})
	for _, a := range site.assets {
		s.app.Get(a.path, func(c *fiber.Ctx) error {
			explorerHeaders(c, a.contentType, explorerAssetCache)
			return c.Send(a.body)
		})
	}
}

func explorerHeaders(c *fiber.Ctx, contentType, cacheControl string) {
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderCacheControl, cacheControl)
	c.Set(fiber.HeaderContentSecurityPolicy, explorerCSP)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
}

package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// The web console: static pages over the read-only /api, embedded so the
// broker is one binary and the console can never disagree with the API it
// was built against. There is no build step: console/ holds the files the
// browser runs, as written. docs/console.md describes the pages.
//
//	GET /                 index.html (the single page; routes are #/...)
//	GET /console/{file}   style.css, favicon.svg, app.js and the ES modules
//	                      it imports (./api.js, ...), all as text/javascript
//
// Any other path stays 404, as before the console existed.

//go:embed console
var consoleFiles embed.FS

// consoleCSP forbids inline scripts and styles and every origin but our
// own: all the console's text comes from the API, so a topic or header
// named like markup must stay text even if a bug slipped past textContent.
// img-src allows data: for nothing but the browser's own use (favicons).
const consoleCSP = "default-src 'self'; img-src 'self' data:"

// consoleTypes are the only extensions served; a file with another one in
// console/ is a mistake, and 404 is a clearer answer than a guessed type.
var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// consoleAsset is one embedded file with its validator, computed once.
type consoleAsset struct {
	body  []byte
	ctype string
	etag  string
}

// consoleAssets maps a file name (no directory: console/ is flat) to its
// asset. Built at init from the embedded tree, so it cannot fail at run
// time.
var consoleAssets = loadConsoleAssets()

func loadConsoleAssets() map[string]consoleAsset {
	out := make(map[string]consoleAsset)
	entries, err := fs.ReadDir(consoleFiles, "console")
	if err != nil {
		// The go:embed directive guarantees the directory; this is a
		// broken build, not input.
		panic("admin: console assets missing: " + err.Error())
	}
	for _, e := range entries {
		ctype, ok := consoleTypes[path.Ext(e.Name())]
		if e.IsDir() || !ok {
			continue
		}
		b, err := consoleFiles.ReadFile("console/" + e.Name())
		if err != nil {
			panic("admin: console asset " + e.Name() + ": " + err.Error())
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = consoleAsset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}

// registerConsole adds the console's routes to the admin mux. "/{$}" is
// the root alone, so unknown paths keep falling through to 404.
func registerConsole(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveConsoleAsset(w, r, "index.html")
	})
	mux.HandleFunc("GET /console/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveConsoleAsset(w, r, r.PathValue("file"))
	})
}

func serveConsoleAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := consoleAssets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// The assets change only with the binary: revalidate every load (a
	// cheap 304 through the ETag) so an upgraded broker never runs with
	// a stale app.js against a newer API.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	// ServeContent answers HEAD, If-None-Match and ranges.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

package admin_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const wantCSP = "default-src 'self'; img-src 'self' data:"

// Every asset is served with its type, the CSP and nosniff; / is the page.
func TestConsoleAssets(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/console/app.js"></script>`},
		{"/console/index.html", "text/html; charset=utf-8", "<!doctype html>"},
		{"/console/app.js", "text/javascript; charset=utf-8", "from './api.js'"},
		{"/console/api.js", "text/javascript; charset=utf-8", "export async function getJSON("},
		{"/console/state.js", "text/javascript; charset=utf-8", "export const state"},
		{"/console/dom.js", "text/javascript; charset=utf-8", "export function el("},
		{"/console/format.js", "text/javascript; charset=utf-8", "export function fmtBytes("},
		{"/console/charts.js", "text/javascript; charset=utf-8", "export function lineChart("},
		{"/console/topics.js", "text/javascript; charset=utf-8", "export function topicsView("},
		{"/console/topic.js", "text/javascript; charset=utf-8", "export function topicView("},
		{"/console/groups.js", "text/javascript; charset=utf-8", "export function groupsView("},
		{"/console/group.js", "text/javascript; charset=utf-8", "export function groupView("},
		{"/console/broker.js", "text/javascript; charset=utf-8", "export function brokerView("},
		{"/console/style.css", "text/css; charset=utf-8", ":root"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
	} {
		code, body, hdr := get(t, h, "GET", tc.path)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, code)
			continue
		}
		if got := hdr.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if got := hdr.Get("Content-Security-Policy"); got != wantCSP {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, got)
		}
		if got := hdr.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", tc.path, got)
		}
		if hdr.Get("ETag") == "" || hdr.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: ETag %q Cache-Control %q", tc.path, hdr.Get("ETag"), hdr.Get("Cache-Control"))
		}
		if !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
	}

	// HEAD answers like GET without a body; a matching ETag is a 304.
	code, body, hdr := get(t, h, "HEAD", "/console/app.js")
	if code != http.StatusOK || body != "" || hdr.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD app.js: %d %q %q", code, body, hdr.Get("Content-Type"))
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/console/app.js", nil)
	req.Header.Set("If-None-Match", hdr.Get("ETag"))
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidation with the ETag: %d, want 304", rec.Code)
	}
}

// The console adds / and /console/{file}; nothing else becomes reachable.
func TestConsoleUnknownPaths(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/index.html", http.StatusNotFound},
		{"GET", "/app.js", http.StatusNotFound},
		{"GET", "/console", http.StatusNotFound},
		{"GET", "/console/", http.StatusNotFound},
		{"GET", "/console/nope.js", http.StatusNotFound},
		{"GET", "/console/app.js/extra", http.StatusNotFound},
		{"GET", "/console/%2e%2e%2fconsole.go", http.StatusNotFound},
		{"GET", "/console/..%2fhandlers.go", http.StatusNotFound},
		{"GET", "/topics", http.StatusNotFound},
		{"POST", "/", http.StatusMethodNotAllowed},
		{"PUT", "/console/app.js", http.StatusMethodNotAllowed},
	} {
		code, body, _ := get(t, h, tc.method, tc.path)
		if code != tc.code {
			t.Errorf("%s %s: %d %q, want %d", tc.method, tc.path, code, body, tc.code)
		}
	}
	// The API's own 404s are untouched.
	if code, body, hdr := get(t, h, "GET", "/api/nope"); code != 404 || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("/api/nope: %d %s", code, body)
	}
}

// Every local asset index.html and style.css reference is served, and the
// page has no inline script or style (the CSP would block them).
func TestConsoleReferencesResolve(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()
	_, page, _ := get(t, h, "GET", "/")
	_, css, _ := get(t, h, "GET", "/console/style.css")

	refs := regexp.MustCompile(`(?:src|href)="([^"#][^"]*)"`).FindAllStringSubmatch(page, -1)
	refs = append(refs, regexp.MustCompile(`url\(["']?([^"')]+)["']?\)`).FindAllStringSubmatch(css, -1)...)
	n := 0
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if !strings.HasPrefix(ref, "/console/") {
			t.Errorf("reference %q is not a console asset (external or relative)", ref)
			continue
		}
		n++
		if code, _, _ := get(t, h, "GET", ref); code != http.StatusOK {
			t.Errorf("referenced asset %s: %d", ref, code)
		}
	}
	if n < 3 {
		t.Errorf("found %d asset references in index.html, want app.js, style.css and the icon", n)
	}
	for _, s := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(s, ` src="`) {
			t.Errorf("inline script %s: the CSP blocks it", s)
		}
	}
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html contains %q: the CSP blocks inline styles and handlers", bad)
		}
	}
}

// importRE finds a module's static imports ("import {a} from './x.js';"
// and the bare "import './x.js';"); the console uses no dynamic import().
var importRE = regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]`)

// consoleScripts returns every script in console/ (read from the source
// directory, so a module nothing imports is still checked) as served:
// name -> body. Each must be served with a JavaScript type, which browsers
// require of module scripts.
func consoleScripts(t *testing.T, h http.Handler) map[string]string {
	t.Helper()
	entries, err := os.ReadDir("console")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".js" {
			continue
		}
		code, body, hdr := get(t, h, "GET", "/console/"+e.Name())
		if code != http.StatusOK || hdr.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("GET /console/%s: %d %q", e.Name(), code, hdr.Get("Content-Type"))
			continue
		}
		out[e.Name()] = body
	}
	if out["app.js"] == "" {
		t.Fatal("no app.js in console/")
	}
	return out
}

// index.html loads app.js alone; the browser finds the rest through its
// imports. Every import is a sibling ("./x.js": console/ is flat and served
// under /console/, and an origin or a bare name would need a build step or
// break the CSP), every imported file is served, and every script is
// reachable from app.js, so none is shipped dead.
func TestConsoleModules(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()
	scripts := consoleScripts(t, h)
	_, page, _ := get(t, h, "GET", "/")
	tags := regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1)
	if len(tags) != 1 || !strings.Contains(tags[0], `type="module"`) || !strings.Contains(tags[0], `src="/console/app.js"`) {
		t.Errorf("index.html scripts %q, want app.js alone as a module", tags)
	}

	reached := map[string]bool{"app.js": true}
	queue := []string{"app.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		for _, m := range importRE.FindAllStringSubmatch(scripts[name], -1) {
			spec := m[1]
			dep, ok := strings.CutPrefix(spec, "./")
			if !ok || strings.Contains(dep, "/") || path.Ext(dep) != ".js" {
				t.Errorf("%s imports %q, want a sibling module \"./name.js\"", name, spec)
				continue
			}
			if _, ok := scripts[dep]; !ok {
				t.Errorf("%s imports %q, which is not served", name, spec)
				continue
			}
			if !reached[dep] {
				reached[dep] = true
				queue = append(queue, dep)
			}
		}
	}
	for name := range scripts {
		if !reached[name] {
			t.Errorf("%s is not imported from app.js: dead code, or a missing import", name)
		}
	}
	if len(scripts) < 2 {
		t.Errorf("found %d scripts, want app.js and the modules it imports", len(scripts))
	}
}

// Text from the API reaches the page as text only: no script parses HTML
// strings at all, so there is nothing to escape wrongly.
func TestConsoleScriptBuildsNoHTML(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()
	scripts := consoleScripts(t, h)
	all := ""
	for _, name := range slices.Sorted(maps.Keys(scripts)) {
		js := scripts[name]
		all += js
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "DOMParser", "createContextualFragment", "eval(", "new Function", "setAttribute('style'", ".style.", "import("} {
			if strings.Contains(js, bad) {
				t.Errorf("%s uses %q", name, bad)
			}
		}
	}
	// API text is set through textContent (and the el/svg helpers).
	if !strings.Contains(all, "textContent") || !strings.Contains(all, "createTextNode") {
		t.Error("the scripts set no text through textContent/createTextNode")
	}
}

// The test ids the browser test (cmd/sluice) and operators' scripts rely
// on exist in the assets, so a rename fails here first, quickly.
func TestConsoleTestIDs(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()
	_, page, _ := get(t, h, "GET", "/")
	js := ""
	for _, body := range consoleScripts(t, h) {
		js += body
	}
	for _, id := range []string{
		"nav-topics", "nav-groups", "nav-broker", "broker-name", "disconnected-banner", "ready-text",
		"topics-table", "topic-link", "toggle-internal", "topic-spark", "topic-rate",
		"partitions-table", "hw", "configs-table", "record-browser",
		"rb-partition", "rb-offset", "rb-limit", "rb-load", "rb-latest", "rb-follow", "rb-hex", "rb-older", "rb-newer", "rb-info",
		"records-table", "rec-offset", "rec-ts", "rec-key", "rec-value", "rec-headers", "rec-header-key", "rec-header-value", "rec-truncated",
		"groups-table", "group-link", "group-lag", "members-table", "member-id", "member-client", "member-assignments",
		"lag-table", "lag-chart", "lag-line", "readiness", "config-table",
	} {
		// In the scripts ids are string literals passed to el(), card() or panel().
		if !strings.Contains(page, `data-testid="`+id+`"`) && !strings.Contains(js, `'`+id+`'`) {
			t.Errorf("data-testid %q is in neither index.html nor a script", id)
		}
	}
}

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode"

	"go.temporal.io/sdk/worker"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/workflows"
)

// rawCall sends one HTTP/1.1 request to addr with the headers written byte
// for byte, in order (net/http refuses control bytes in a header value;
// an attacker's client does not), and reads the answer. Host,
// Connection and Content-Length are added.
func rawCall(t testing.TB, addr, method, path string, header [][2]string, body string) (response, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, addr)
	for _, h := range header {
		fmt.Fprintf(&sb, "%s: %s\r\n", h[0], h[1])
	}
	fmt.Fprintf(&sb, "Content-Length: %d\r\n\r\n%s", len(body), body)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return response{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, sb.String()); err != nil {
		return response{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.Env); err != nil {
			return out, fmt.Errorf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return out, nil
}

// unreadable reports whether s holds a control or format character.
func unreadable(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf) }) >= 0
}

// TestControlCharactersInHeadersAreCleanedBeforeTheyAreStored signs in
// over a raw connection with a User-Agent full of control and format
// characters (terminal escapes, DEL, a C1 control, a right-to-left
// override, a zero-width space) and a request id with a control byte. The
// sign-in succeeds; the session and the audit event keep the agent's text
// without them (a tab is a space), and the request id is kept without its
// control byte. A header past the server's buffer is a 400 in the
// envelope, not a 500.
func TestControlCharactersInHeadersAreCleanedBeforeTheyAreStored(t *testing.T) {
	h := harness.Get(t)
	addr := serve(t, sharedAPI(t))
	w := newWorld(t, h, "team")
	viewer := w.People[domain.RoleViewer]
	signIn := `{"email":"` + viewer.Email + `","password":"` + testPassword + `"}`
	const hostile = "probe/2.0 \x01\x1b[31mred\x1b[0m\x7f\tx \u202egnp.exe\u0085 \u200bend"
	const stored = "probe/2.0 [31mred[0m x gnp.exe end"

	r, err := rawCall(t, addr, "POST", "/api/v1/auth/sign-in", [][2]string{
		{"Content-Type", "application/json"}, {"User-Agent", hostile}, {"X-Request-ID", "req-\x01-1"}}, signIn)
	if err != nil || r.Status != 200 {
		t.Fatalf("sign-in: %v %d %s", err, r.Status, r.Raw)
	}
	if r.Env.Meta.RequestID != "req--1" || r.Header.Get("X-Request-ID") != "req--1" {
		t.Errorf("request id %q (header %q), want it without its control byte", r.Env.Meta.RequestID, r.Header.Get("X-Request-ID"))
	}
	agents := storedUserAgents(t, h, r.Env.Meta.RequestID)
	if len(agents) != 1 || agents[0] != stored {
		t.Errorf("the audit event's user agent = %q, want [%q]", agents, stored)
	}
	var agent string
	if err := h.DB.NewRaw("SELECT user_agent FROM sessions WHERE user_id = ? ORDER BY created_at DESC LIMIT 1", viewer.UserID).Scan(context.Background(), &agent); err != nil || agent != stored {
		t.Errorf("the session's user agent = %q (%v), want %q", agent, err, stored)
	}

	for _, n := range []int{5000, 70000} {
		r, err := rawCall(t, addr, "POST", "/api/v1/auth/sign-in", [][2]string{
			{"Content-Type", "application/json"}, {"User-Agent", strings.Repeat("a", n)}}, signIn)
		if err != nil || r.Status != 400 || r.code() != "BAD_REQUEST" {
			t.Errorf("a %d-byte User-Agent: %v %d %s", n, err, r.Status, r.Raw)
		}
	}
}

// headerRoute is one request of FuzzHeaders: a public route, a member's
// read and mutations (one answered from a stored Idempotency-Key, two
// through the tenant's saga), each with a body it accepts.
type headerRoute struct {
	method, path, body string
}

// FuzzHeaders sends the routes above to the real router, served over TCP
// with a real Postgres and Temporal, with fuzzed values of the headers a
// client controls: User-Agent, Idempotency-Key, X-Request-ID,
// X-Forwarded-For (the peer is a trusted proxy, so it is read),
// Authorization ("{token}" in it stands for a member's session token,
// "{sa}" for a ci-limited service account's), Accept and Content-Type;
// pad lengthens the User-Agent by 64 bytes a unit (up to 16,320): the
// fuzzer changes a number by at most 100 at a time, and this way one
// change reaches past the server's 4 KiB buffer for the request line and
// headers. Whatever the values, the answer is no 5xx, and it is the API's
// envelope (an events export's NDJSON lines for a 200 that asked for one).
// CR and LF end a header value; they are taken out of the values.
func FuzzHeaders(f *testing.F) {
	h := harness.Get(f)
	tq := harness.TaskQueue(f)
	dp := &dataplane.Postgres{DB: h.DB, Keys: testKeys()}
	if err := dp.Init(context.Background()); err != nil {
		f.Fatal(err)
	}
	h.StartWorker(f, tq, func(r worker.Registry) {
		r.RegisterWorkflow(workflows.TenantWorkflow)
		r.RegisterActivity(&activities.Activities{DB: h.DB, DataPlane: dp})
	})
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	addr := serve(f, api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: tq, WorkerBound: 5 * time.Second,
		PublicRequestsPerMinute: 1 << 20, UserRequestsPerMinute: 1 << 20, TrustedProxies: []netip.Prefix{loopback}}))
	w := newWorld(f, h, "enterprise")
	owner := w.People[domain.RoleOwner]
	bot := addScopedAccount(f, h, w, owner, domain.RoleDeveloper, []string{"tenants:create", "tenants:read", "tenants:suspend"}, []string{"ci"})

	created, err := rawCall(f, addr, "POST", orgPath(w, "/tenants"), [][2]string{{"Content-Type", "application/json"}, {"Authorization", "Bearer " + owner.Token}},
		`{"name":"taken","environment":"ci"}`)
	if err != nil || created.Status != 202 {
		f.Fatalf("create the tenant: %v %d %s", err, created.Status, created.Raw)
	}
	var tn lifecycleData
	if err := json.Unmarshal(created.Env.Data, &tn); err != nil {
		f.Fatal(err)
	}

	routes := []headerRoute{
		{"POST", "/api/v1/auth/sign-in", `{"email":"` + w.People[domain.RoleViewer].Email + `","password":"` + testPassword + `"}`},
		{"POST", "/api/v1/auth/sign-in", `{"email":"` + w.People[domain.RoleViewer].Email + `","password":"a wrong password"}`},
		{"POST", "/api/v1/invitations/accept", `{"token":"no-such-invitation","password":"` + testPassword + `"}`},
		{"GET", "/api/v1/me", ""},
		{"GET", orgPath(w, "/events?limit=5"), ""},
		{"PATCH", orgPath(w, ""), `{"name":"Fuzzed Org"}`},
		{"POST", orgPath(w, "/tenants"), `{"name":"taken","environment":"ci"}`},
		{"POST", orgPath(w, "/tenants/"+tn.Tenant.ID+"/suspend"), ""},
		{"GET", orgPath(w, "/tenants"), ""},
	}
	type seed struct {
		route                                 uint8
		ua                                    string
		pad                                   uint8
		key, reqID, xff, authz, accept, ctype string
	}
	plain := seed{0, "curl/8.5.0", 0, "", "", "", "", "application/json", "application/json"}
	seeds := []seed{plain}
	for i := range routes {
		s := plain
		s.route, s.authz = uint8(i), "Bearer {token}"
		seeds = append(seeds, s)
		s.authz = "Bearer {sa}"
		seeds = append(seeds, s)
	}
	for _, s := range []seed{
		{0, "a\x00b", 0, "", "", "", "", "", "application/json"},
		{0, "\x01\x1b[31m\x7f\u202e\u0085\xff", 0, "", "req-\x00", "", "", "", "application/json"},
		{5, "x", 0, "key-\x00", "", "10.0.0.1, fe80::1%\x1b", "Bearer {token}\x00", "", "application/json; charset=\x00"},
		{5, "x", 0, strings.Repeat("k", 200), strings.Repeat("r", 200), "", "bearer  {token} ", "*/*", "application/json"},
		{6, "\u200bbot", 0, "create-\u0301", "", "not an address", "Bearer {sa}", "", "application/json"},
		{4, "", 0, "", "", "", "Bearer {token}", "application/x-ndjson", ""},
		{4, "", 0, "", "", "", "Bearer {sa}", "application/x-ndjson\x00", "text/plain"},
		{7, "\xc0\xaf", 0, "suspend-1", "", "::ffff:127.0.0.1", "Bearer {token}", "", ""},
		{3, "", 0, "", "", "", "Basic Zm9vOmJhcg==", "", ""},
		{3, "", 0, "", "", "", "Bearer cps_\x00", "", ""},
	} {
		seeds = append(seeds, s)
	}
	for _, s := range seeds {
		f.Add(s.route, s.ua, s.pad, s.key, s.reqID, s.xff, s.authz, s.accept, s.ctype)
	}

	oneLine := strings.NewReplacer("\r", "", "\n", "")
	f.Fuzz(func(t *testing.T, route uint8, ua string, pad uint8, key, reqID, xff, authz, accept, ctype string) {
		ua += strings.Repeat("a", 64*int(pad))
		values := []string{ua, key, reqID, xff, authz, accept, ctype}
		for i, v := range values {
			values[i] = oneLine.Replace(v)
		}
		authz = strings.NewReplacer("{token}", owner.Token, "{sa}", bot.Token).Replace(values[4])
		rt := routes[int(route)%len(routes)]
		var header [][2]string
		for i, name := range []string{"User-Agent", "Idempotency-Key", "X-Request-ID", "X-Forwarded-For", "Authorization", "Accept", "Content-Type"} {
			v := values[i]
			if name == "Authorization" {
				v = authz
			}
			if v != "" {
				header = append(header, [2]string{name, v})
			}
		}
		r, err := rawCall(t, addr, rt.method, rt.path, header, rt.body)
		ndjson := strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-ndjson")
		switch {
		case r.Status >= 500:
			t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, header, r.Status, r.Raw)
		case ndjson && r.Status == 200:
			for _, line := range strings.Split(strings.TrimSpace(r.Raw), "\n") {
				if line != "" && !json.Valid([]byte(line)) {
					t.Fatalf("%s %s with %q: an export line is not JSON: %q", rt.method, rt.path, header, line)
				}
			}
		case err != nil:
			t.Fatalf("%s %s with %q: %v", rt.method, rt.path, header, err)
		case r.Status >= 400 && (r.Env.Error == nil || r.Env.Error.Code == "" || r.Env.Error.Message == "" || r.Env.Error.FieldErrors == nil):
			t.Fatalf("%s %s with %q: %d is not the error envelope: %s", rt.method, rt.path, header, r.Status, r.Raw)
		case r.Status < 400 && r.Env.Data == nil:
			t.Fatalf("%s %s with %q: %d without data: %s", rt.method, rt.path, header, r.Status, r.Raw)
		}
	})
}

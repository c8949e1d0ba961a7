package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/auditstream"
)

// streamReceiver is an audit stream's receiver on loopback: it takes
// every request and keeps it for the test to check.
type streamReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []receivedBatch
}

// receivedBatch is one request a receiver took.
type receivedBatch struct {
	signature, key string
	body           []byte
	events         []map[string]any
}

func newStreamReceiver(t *testing.T) *streamReceiver {
	r := &streamReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		b := receivedBatch{signature: req.Header.Get("IntelliAuth-Signature"), key: req.Header.Get("Idempotency-Key"), body: body}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 1<<20), 2<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				b.events = append(b.events, ev)
			}
		}
		r.mu.Lock()
		r.got = append(r.got, b)
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

// batchWith waits for a request, after the first skip ones, carrying an
// event of the action (and of the id, when given).
func (r *streamReceiver) batchWith(t *testing.T, skip int, action, id string) receivedBatch {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r.mu.Lock()
		got := slices.Clone(r.got)
		r.mu.Unlock()
		for _, b := range got[min(skip, len(got)):] {
			for _, ev := range b.events {
				if ev["action"] == action && (id == "" || ev["id"] == id) {
					return b
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver got no batch with %s %s in %s (%d requests)", action, id, within, len(got))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *streamReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// TestTheConsoleRunsAnAuditStreamToAReceiver: an owner creates an https
// stream in the console, pointed at a receiver on loopback, with every
// preset and a family typed as chips; the signing secret is shown once,
// and the receiver's batch verifies with it. The list shows the stream
// active with a last delivery, and another stream failing with its
// receiver's answer; the test button shows the receiver's 200; the stream
// is paused and resumed, edited, replayed from its first event, and its
// delivery log lists the batch; it is deleted by typing its name. The
// audit page shows the chain's signed head as the API gives it. A viewer
// and a developer are not offered streams, and the API refuses them.
func TestTheConsoleRunsAnAuditStreamToAReceiver(t *testing.T) {
	t.Parallel()
	rec := newStreamReceiver(t)
	env := append(devEnv(t), "CP_STREAM_ALLOW_PRIVATE=true")
	p := startDev(t, env)
	origin := "http://" + p.api
	owner := signInDev(t, p.api)
	streams := "/orgs/" + owner.org + "/streams"

	c := openConsole(t, origin)
	c.navigate("/sign-in?next=" + streams)
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitPath(`/streams$`)
	c.waitText("No streams yet")
	c.waitFor("the Streams link next to Audit", `[...document.querySelectorAll("header nav a")].map(a => a.innerText).join(",").includes("Audit,Streams")`)

	// Created with the lifecycle preset and a family typed as a chip.
	const form = "[data-testid=create-stream]"
	c.fill(form+" input[name=name]", "SIEM webhook")
	c.fill(form+" input[name=endpoint]", rec.URL+"/intelliauth")
	// Every preset is added, so the API checks each name the console holds.
	for _, preset := range []string{"Lifecycle webhooks", "Every tenant event", "Members and access"} {
		c.press(form, preset)
	}
	c.fill(form+" input[name=actions]", "audit_stream.*,")
	c.waitFor("fifteen chips", `document.querySelectorAll("[data-testid=action-chip]").length === 15`)
	c.accessible("streams-create")
	c.press(form, "Create stream")
	c.waitFor("the signing secret", `document.querySelector("[data-testid=signing-secret]")?.innerText.startsWith("cpw_")`)
	secret := eval[string](c, `document.querySelector("[data-testid=signing-secret]").innerText`)
	c.waitFor("the stream in the list", `document.querySelector("tr[data-testid=stream][data-name='SIEM webhook']")`)
	c.accessible("streams-secret")

	_, list := owner.do("GET", "/organizations/"+owner.org+"/audit-streams", nil)
	all := list["data"].([]any)
	if len(all) != 1 {
		t.Fatalf("after the console's creation the API lists %d streams: %v", len(all), list)
	}
	stream := all[0].(map[string]any)
	id := stream["id"].(string)
	var actions []string
	for _, a := range stream["actions"].([]any) {
		actions = append(actions, a.(string))
	}
	if len(actions) != 15 || !slices.Contains(actions, "tenant.provisioned") || !slices.Contains(actions, "tenant.*") ||
		!slices.Contains(actions, "service_account.*") || !slices.Contains(actions, "audit_stream.*") {
		t.Fatalf("the stream's actions = %v, want the presets' and audit_stream.*", actions)
	}
	if strings.Contains(fmt.Sprint(stream), secret) {
		t.Fatal("the API shows the signing secret after the creation")
	}

	// The receiver gets the stream's own creation, signed with that secret.
	first := rec.batchWith(t, 0, "audit_stream.created", "")
	if err := auditstream.Verify(first.signature, first.body, []byte(secret), 0, time.Now()); err != nil {
		t.Fatalf("the batch's signature %q does not verify with the secret the console showed: %v", first.signature, err)
	}
	if err := auditstream.Verify(first.signature, first.body, []byte(secret+"x"), 0, time.Now()); err == nil {
		t.Fatal("the batch verifies with another secret too")
	}
	firstID := first.events[0]["id"].(string)
	lastID := first.events[len(first.events)-1]["id"].(string)
	if want := id + "/" + firstID + "/" + lastID; first.key != want {
		t.Fatalf("the batch's Idempotency-Key = %q, want %q", first.key, want)
	}

	// The secret is shown until dismissed, and never again.
	c.press("[data-testid=new-stream-secret]", "Done")
	c.waitFor("the list to show a delivery", `(() => { const r = document.querySelector("tr[data-testid=stream][data-name='SIEM webhook']");
		return r?.dataset.status === "active" && r.querySelector("[data-testid=last-delivery]").innerText !== "never" })()`)
	c.navigate(streams)
	c.waitFor("the list again", `document.querySelector("tr[data-testid=stream]")`)
	if eval[bool](c, fmt.Sprintf(`document.body.innerHTML.includes(%q)`, secret)) {
		t.Fatal("the signing secret is shown again after the page is opened again")
	}

	// A stream whose receiver refuses is failing, and the list says why.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "maintenance window", http.StatusServiceUnavailable)
	}))
	t.Cleanup(refusing.Close)
	if code, out := owner.do("POST", "/organizations/"+owner.org+"/audit-streams", map[string]any{
		"name": "Old collector", "kind": "https", "endpoint": refusing.URL + "/events", "format": "cloudevents"}); code != 201 {
		t.Fatalf("create a stream to a refusing receiver: %d %v", code, out)
	}
	c.waitFor("the failing stream and its error", `(() => { const r = document.querySelector("tr[data-testid=stream][data-name='Old collector']");
		return r?.dataset.status === "failing" && r.querySelector("[data-testid=stream-error]")?.innerText.includes("503") })()`)
	c.accessible("streams")

	// The stream's page: the test button shows the receiver's answer.
	c.press("[data-testid=streams]", "SIEM webhook")
	c.waitPath(`/streams/` + regexp.QuoteMeta(id) + `$`)
	c.press("[data-testid=stream-actions]", "Send test event")
	c.waitFor("the receiver's answer", `document.querySelector("[data-testid=test-result]")?.innerText.includes("HTTP 200")`)
	testID := eval[string](c, `document.querySelector("[data-testid=test-result] code").innerText`)
	tb := rec.batchWith(t, 0, "audit_stream.test", testID)
	if err := auditstream.Verify(tb.signature, tb.body, []byte(secret), 0, time.Now()); err != nil {
		t.Fatalf("the test event's signature does not verify: %v", err)
	}

	// Paused, then resumed.
	status := func() string {
		t.Helper()
		code, out := owner.do("GET", "/organizations/"+owner.org+"/audit-streams/"+id, nil)
		if code != 200 {
			t.Fatalf("get the stream: %d %v", code, out)
		}
		return out["data"].(map[string]any)["status"].(string)
	}
	c.press("[data-testid=stream-actions]", "Pause")
	c.waitFor("the paused badge", `document.querySelector("h1 [data-testid=stream-status]")?.innerText === "paused"`)
	if s := status(); s != "paused" {
		t.Fatalf("after Pause the API says the stream is %s", s)
	}
	c.press("[data-testid=stream-actions]", "Resume")
	c.waitFor("the active badge", `document.querySelector("h1 [data-testid=stream-status]")?.innerText === "active"`)
	if s := status(); s != "active" {
		t.Fatalf("after Resume the API says the stream is %s", s)
	}

	// The delivery log lists the first batch and the test.
	c.waitFor("the first batch in the delivery log", fmt.Sprintf(
		`document.querySelector("tr[data-testid=delivery][data-outcome=delivered][data-first='%s'][data-last='%s']")`, firstID, lastID))
	c.waitFor("the test in the delivery log", fmt.Sprintf(`document.querySelector("tr[data-testid=delivery][data-outcome=test][data-first='%s']")`, testID))
	c.accessible("stream-deliveries")

	// Renamed; delivered again from its first event.
	c.press("[data-testid=stream-actions]", "Edit")
	c.fill("[data-testid=edit-stream] input[name=name]", "Security webhook")
	c.press("[data-testid=edit-stream]", "Save")
	c.waitFor("the new name", `document.querySelector("h1")?.innerText.startsWith("Security webhook")`)
	before := rec.count()
	c.press("[data-testid=stream-actions]", "Deliver again")
	c.fill("[data-testid=replay-stream] input[name=from_event_id]", firstID)
	c.press("[data-testid=replay-stream]", "Replay")
	c.waitText("the stream delivers those events again")
	rec.batchWith(t, before, "audit_stream.created", firstID)

	// Deleted by typing its name.
	c.press("[data-testid=stream-actions]", "Delete")
	c.waitFor("the delete dialog", `document.querySelector("dialog[open] input[name=typed]")`)
	if eval[bool](c, `[...document.querySelectorAll("dialog[open] button")].find(b => b.innerText === "Delete stream").disabled === false`) {
		t.Fatal("the deletion is offered before the name is typed")
	}
	c.fill("dialog[open] input[name=typed]", "Security webhook")
	c.press("dialog[open]", "Delete stream")
	c.waitPath(`/streams$`)
	c.waitFor("the list without it", `document.querySelector("tr[data-testid=stream][data-name='Old collector']") && !document.querySelector("tr[data-testid=stream][data-name='Security webhook']")`)
	if code, out := owner.do("GET", "/organizations/"+owner.org+"/audit-streams/"+id, nil); code != 404 {
		t.Fatalf("the deleted stream = %d %v, want 404", code, out)
	}

	// The audit page shows the chain's head as the API signs it.
	c.navigate("/orgs/" + owner.org + "/audit")
	c.waitFor("the chain's state", `document.querySelector("[data-testid=chain-state]")?.innerText.includes("Tamper-evident:")`)
	code, out := owner.do("GET", "/organizations/"+owner.org+"/audit-chain", nil)
	if code != 200 {
		t.Fatalf("audit chain: %d %v", code, out)
	}
	head := out["data"].(map[string]any)
	c.waitFor("the chain's length, head and key", fmt.Sprintf(`(() => { const s = document.querySelector("[data-testid=chain-state]").innerText;
		return s.includes(%q) && s.includes(%q) && s.includes(%q) })()`,
		fmt.Sprintf("%.0f events", head["length"].(float64)), "head "+head["head"].(string)[:12]+"…", "by key "+head["key_id"].(string)))
	c.waitFor("the events' seq", `[...document.querySelectorAll("[data-testid=seq]")].some(td => /^[0-9]+$/.test(td.innerText))`)
	eval[bool](c, `(() => { document.querySelector("[data-testid=audit-chain] details").open = true; return true })()`)
	c.accessible("audit-chain")

	// Neither a viewer nor a developer is offered streams; the API
	// refuses them.
	dataDir := lookup(env, "CP_DATA_DIR")
	for _, role := range []string{"viewer", "developer"} {
		email, password := role+"@acme.test", "a "+role+"'s long password"
		join(t, owner, dataDir, email, role, password)
		c.press("header", "Sign out")
		c.waitPath(`^/sign-in$`)
		c.navigate("/sign-in?next=/orgs/" + owner.org + "/tenants")
		c.signIn(email, password)
		c.waitFor("the organisation's navigation", `[...document.querySelectorAll("header nav a")].some(a => a.innerText === "Tenants")`)
		if c.offered("Streams") {
			t.Fatalf("a %s is offered the Streams page", role)
		}
		c.navigate(streams)
		c.waitFor("the page's refusal", `document.querySelector("[data-testid=read-only]")`)
		who := &devClient{t: t, base: owner.base, token: c.token()}
		if code, out := who.do("GET", "/organizations/"+owner.org+"/audit-streams", nil); code != 403 {
			t.Fatalf("a %s lists the streams: %d %v, want 403", role, code, out)
		}
	}
}

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intelliauth/controlplane/internal/codec"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/store"
)

// payloadTestAgent is the User-Agent the payload tests send: it reaches
// the saga's request (and so its history) with the member's email.
const payloadTestAgent = "payload-test-agent/1.0 (personal data)"

// rawHistory reads a workflow's latest run with a Temporal client that
// has no codec: what the Temporal server stores, and anyone who can read
// it sees.
func rawHistory(t *testing.T, addr, workflowID string) *historypb.History {
	t.Helper()
	raw, err := client.Dial(client.Options{HostPort: addr, Namespace: harness.Namespace, Logger: logging.Temporal(harness.Get(t).Log)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	return historyOf(t, raw, workflowID, "")
}

// historyPayloads are every payload of a history but its search
// attributes (Temporal indexes those, so they are never encoded).
func historyPayloads(t *testing.T, hist *historypb.History) []*commonpb.Payload {
	t.Helper()
	var out []*commonpb.Payload
	err := proxy.VisitPayloads(context.Background(), hist, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			out = append(out, ps...)
			return ps, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// activeWithAgent creates a tenant in a world of its own as the world's
// developer, with the User-Agent of the payload tests, and waits until it
// is active.
func activeWithAgent(t *testing.T, name string) (world, store.Tenant) {
	t.Helper()
	l := newLifecycle(t, nil)
	w := newWorld(t, harness.Get(t), "team")
	created := createWithAgent(t, l, w, name)
	return w, l.waitState(t, w, created.Tenant.ID, domain.StateActive)
}

// createWithAgent creates a tenant as the world's developer with the
// User-Agent of the payload tests, and returns it.
func createWithAgent(t *testing.T, l lifecycle, w world, name string) lifecycleData {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "environment": "prod"})
	r := httptest.NewRequest("POST", orgPath(w, "/tenants"), bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+w.People[domain.RoleDeveloper].Token)
	r.Header.Set("User-Agent", payloadTestAgent)
	resp := testApp(t, l.srv, r, 30_000)
	var env struct {
		Data lifecycleData `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 202 {
		t.Fatalf("create %s: %d %v", name, resp.StatusCode, err)
	}
	return env.Data
}

// TestAWorkflowHistoryCarriesNoPersonalDataInClear creates a tenant
// through the API with a User-Agent of its own and reads the saga's
// history back as the Temporal server keeps it (a client with no codec):
// the member's email, the user agent and the client address appear
// nowhere, and every payload (inputs, results, memo, markers) carries the
// codec's encoding and the id of the key that sealed it.
func TestAWorkflowHistoryCarriesNoPersonalDataInClear(t *testing.T) {
	w, tn := activeWithAgent(t, "private")
	hist := rawHistory(t, harness.Get(t).TemporalAddr, tn.WorkflowID)
	text, err := protojson.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	payloads := historyPayloads(t, hist)
	email := w.People[domain.RoleDeveloper].Email
	for _, secret := range []string{email, payloadTestAgent, "ClientAddr", "UserAgent"} {
		if strings.Contains(string(text), secret) {
			t.Errorf("the raw history holds %q in clear", secret)
		}
		for i, p := range payloads {
			if bytes.Contains(p.GetData(), []byte(secret)) {
				t.Errorf("payload %d holds %q in clear", i, secret)
			}
		}
	}
	if len(payloads) < 5 {
		t.Fatalf("only %d payloads in the history", len(payloads))
	}
	for i, p := range payloads {
		if enc := string(p.GetMetadata()["encoding"]); enc != "binary/encrypted" || len(p.GetMetadata()["encryption-key-id"]) == 0 {
			t.Errorf("payload %d of %d: encoding %q, key id %q; want binary/encrypted under a key", i, len(payloads), enc, p.GetMetadata()["encryption-key-id"])
		}
	}
}

// TestTheCodecEndpointShowsAHistoryDecodedToAnOperatorOnly sends the
// payloads of a saga's raw history to the codec endpoint, as the Temporal
// UI and CLI do (POST /codec/decode, X-Namespace, JSON payloads): with
// the operators' token they come back in clear, the member's email and
// user agent in the saga's request; without it, with another token or
// from a page of another origin, the endpoint refuses and shows nothing.
func TestTheCodecEndpointShowsAHistoryDecodedToAnOperatorOnly(t *testing.T) {
	h := harness.Get(t)
	w, tn := activeWithAgent(t, "decoded")

	const token = "operators-codec-token-0123456789abcdef"
	endpoint := httptest.NewServer(codec.Handler(codec.New(h.Keys), codec.HandlerOptions{
		Namespace: harness.Namespace, Token: token, Origins: []string{"https://temporal.example.com"}}))
	defer endpoint.Close()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: historyPayloads(t, rawHistory(t, h.TemporalAddr, tn.WorkflowID))})
	if err != nil {
		t.Fatal(err)
	}
	decode := func(header map[string]string) (int, string) {
		r, _ := http.NewRequest("POST", endpoint.URL+"/codec/decode", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Namespace", harness.Namespace)
		for k, v := range header {
			r.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out commonpb.Payloads
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return resp.StatusCode, string(raw)
		}
		if err := protojson.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		var clear strings.Builder
		for _, p := range out.GetPayloads() {
			if enc := string(p.GetMetadata()["encoding"]); enc != "json/plain" {
				t.Errorf("a decoded payload is %q", enc)
			}
			clear.Write(p.GetData())
		}
		return resp.StatusCode, clear.String()
	}

	email := w.People[domain.RoleDeveloper].Email
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"without credentials", nil, 401},
		{"with another token", map[string]string{"Authorization": "Bearer not-the-operators-token-0123456789"}, 401},
		{"from the UI's origin without a token", map[string]string{"Origin": "https://temporal.example.com"}, 401},
		{"with the token from a page of another origin", map[string]string{"Authorization": "Bearer " + token, "Origin": "https://rebound.example"}, 403},
	} {
		if code, out := decode(tc.header); code != tc.want || strings.Contains(out, email) {
			t.Errorf("%s: %d, want %d; answer %.200s", tc.name, code, tc.want, out)
		}
	}
	code, clear := decode(map[string]string{"Authorization": "Bearer " + token})
	if code != 200 || !strings.Contains(clear, email) || !strings.Contains(clear, payloadTestAgent) {
		t.Fatalf("an operator's decode: %d, without the member's email or user agent:\n%.600s", code, clear)
	}
}

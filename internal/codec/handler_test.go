package codec

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const testToken = "a-codec-token-of-at-least-32-characters"

// sealedBody is a decode request for one payload of the codec.
func sealedBody(t *testing.T, c *Codec, clear string) string {
	t.Helper()
	ps, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(clear)}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func send(h http.Handler, method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decoded(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var out commonpb.Payloads
	if err := protojson.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.GetPayloads()) != 1 {
		t.Fatalf("answer %q: %v", w.Body.String(), err)
	}
	return string(out.GetPayloads()[0].GetData())
}

func TestTheCodecEndpointDecodesOnlyForAnOperatorsToken(t *testing.T) {
	c := New(ring(t, key(t, "k1")))
	h := Handler(c, HandlerOptions{Namespace: "default", Token: testToken, Origins: []string{"https://temporal.example.com"}})
	body := sealedBody(t, c, `{"email":"owner@acme.test"}`)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no credentials", map[string]string{"X-Namespace": "default"}, 401},
		{"another token", map[string]string{"X-Namespace": "default", "Authorization": "Bearer " + strings.Repeat("x", 40)}, 401},
		{"the token without its scheme", map[string]string{"X-Namespace": "default", "Authorization": testToken}, 401},
		{"the UI's origin without a token", map[string]string{"X-Namespace": "default", "Origin": "https://temporal.example.com"}, 401},
		{"the token from another origin", map[string]string{"X-Namespace": "default", "Authorization": "Bearer " + testToken, "Origin": "https://evil.example"}, 403},
		{"the token for another namespace", map[string]string{"X-Namespace": "billing", "Authorization": "Bearer " + testToken}, 403},
		{"the token", map[string]string{"X-Namespace": "default", "Authorization": "Bearer " + testToken}, 200},
		{"the token from the UI's origin", map[string]string{"X-Namespace": "default", "Authorization": "Bearer " + testToken, "Origin": "https://temporal.example.com"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := send(h, "POST", "/codec/decode", body, tc.header)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want != 200 {
				if strings.Contains(w.Body.String(), "owner@acme.test") {
					t.Fatalf("a refusal carries the clear payload: %s", w.Body)
				}
				return
			}
			if got := decoded(t, w); got != `{"email":"owner@acme.test"}` {
				t.Fatalf("decoded %q", got)
			}
		})
	}
}

func TestTheCodecEndpointAnswersTheUIsPreflightAndNoOtherOrigins(t *testing.T) {
	h := Handler(New(ring(t, key(t, "k1"))), HandlerOptions{Namespace: "default", Token: testToken, Origins: []string{"https://temporal.example.com"}})
	w := send(h, "OPTIONS", "/codec/decode", "", map[string]string{"Origin": "https://temporal.example.com",
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type,x-namespace"})
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://temporal.example.com" ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "X-Namespace") ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("the UI's preflight: %d %v", w.Code, w.Header())
	}
	w = send(h, "OPTIONS", "/codec/decode", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
	if w.Code != 403 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("another origin's preflight: %d %v", w.Code, w.Header())
	}
}

func TestDevsUIOriginIsTrustedWithoutATokenAndNoOtherOriginIs(t *testing.T) {
	c := New(ring(t, key(t, "k1")))
	h := Handler(c, HandlerOptions{Namespace: "default", Token: testToken, Origins: []string{"http://127.0.0.1:8233"}, TrustOrigins: true})
	body := sealedBody(t, c, `"clear"`)
	if w := send(h, "POST", "/codec/decode", body, map[string]string{"Origin": "http://127.0.0.1:8233", "X-Namespace": "default"}); w.Code != 200 || decoded(t, w) != `"clear"` {
		t.Fatalf("the UI's own page: %d %s", w.Code, w.Body)
	}
	if w := send(h, "POST", "/codec/decode", body, map[string]string{"Origin": "http://localhost:9999"}); w.Code != 403 {
		t.Fatalf("another origin: %d %s", w.Code, w.Body)
	}
	if w := send(h, "POST", "/codec/decode", body, nil); w.Code != 401 {
		t.Fatalf("no origin and no token: %d %s", w.Code, w.Body)
	}
}

func TestTheCodecEndpointEncodesAndRefusesWhatIsNotItsProtocol(t *testing.T) {
	c := New(ring(t, key(t, "k1")))
	h := Handler(c, HandlerOptions{Namespace: "default", Token: testToken})
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	clear, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"an operator's signal"`)}}})
	w := send(h, "POST", "/codec/encode", string(clear), auth)
	if w.Code != 200 || strings.Contains(w.Body.String(), "signal") {
		t.Fatalf("encode: %d %s", w.Code, w.Body)
	}
	var enc commonpb.Payloads
	if err := protojson.Unmarshal(w.Body.Bytes(), &enc); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decode(enc.GetPayloads()); err != nil || string(got[0].GetData()) != `"an operator's signal"` {
		t.Fatalf("the encoded payload opens to %v, %v", got, err)
	}

	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/codec/decode", "", 405},
		{"POST", "/codec/other", "{}", 404},
		{"POST", "/codec/decode", "not json", 400},
		{"POST", "/codec/decode", `{"payloads":[{"metadata":{"encoding":"` + base64.StdEncoding.EncodeToString([]byte(Encoding)) + `"},"data":"` + base64.StdEncoding.EncodeToString([]byte("sealed:k1:garbage-garbage-garbage")) + `"}]}`, 400},
		{"POST", "/codec/decode", `{"payloads":[{"data":"` + strings.Repeat("A", MaxBody) + `"}]}`, 413},
	} {
		if w := send(h, tc.method, tc.path, tc.body, auth); w.Code != tc.want {
			t.Errorf("%s %s %.40s: %d, want %d (%.200s)", tc.method, tc.path, tc.body, w.Code, tc.want, w.Body)
		}
	}
}

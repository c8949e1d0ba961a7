package codec

import (
	"bytes"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/intelliauth/controlplane/internal/seal"
)

func ring(t testing.TB, spec ...string) *seal.Ring {
	t.Helper()
	r, err := seal.ParseRing(strings.Join(spec, ","))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func key(t testing.TB, id string) string {
	t.Helper()
	k, err := seal.NewKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type request struct {
	Email     string
	UserAgent string
}

func TestAPayloadIsSealedWholeAndOpensToWhatWasWritten(t *testing.T) {
	dc := DataConverter(ring(t, key(t, "k1")))
	in := request{Email: "owner@acme.test", UserAgent: "Mozilla/5.0"}
	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != Encoding {
		t.Errorf("encoding = %q, want %q", enc, Encoding)
	}
	if id := string(p.GetMetadata()[MetadataKeyID]); id != "k1" {
		t.Errorf("key id = %q, want k1", id)
	}
	for _, clear := range []string{"owner@acme.test", "Mozilla", "json/plain", "Email"} {
		if bytes.Contains(p.GetData(), []byte(clear)) {
			t.Errorf("the encoded payload holds %q in clear", clear)
		}
	}
	var out request
	if err := dc.FromPayload(p, &out); err != nil || out != in {
		t.Fatalf("decoded %+v, %v; want %+v", out, err, in)
	}
}

func TestAPayloadWithoutTheCodecsEncodingPassesThroughUndecoded(t *testing.T) {
	plain, err := converter.GetDefaultDataConverter().ToPayload(request{Email: "recorded@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := New(ring(t, key(t, "k1"))).Decode([]*commonpb.Payload{plain})
	if err != nil || len(got) != 1 || got[0] != plain {
		t.Fatalf("decode of a payload written before the codec: %v, %v", got, err)
	}
	var out request
	if err := DataConverter(ring(t, key(t, "k1"))).FromPayload(plain, &out); err != nil || out.Email != "recorded@acme.test" {
		t.Fatalf("read %+v, %v", out, err)
	}
}

func TestAPayloadSealedUnderAnOlderKeyOpensAfterARotationAndNotWithoutThatKey(t *testing.T) {
	k1, k2 := key(t, "k1"), key(t, "k2")
	old, err := New(ring(t, k1)).Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})
	if err != nil {
		t.Fatal(err)
	}
	rotated := New(ring(t, k2, k1))
	fresh, err := rotated.Encode([]*commonpb.Payload{{Data: []byte("y")}})
	if err != nil || string(fresh[0].GetMetadata()[MetadataKeyID]) != "k2" {
		t.Fatalf("the rotated ring sealed under %q (%v), want k2", fresh[0].GetMetadata()[MetadataKeyID], err)
	}
	if got, err := rotated.Decode(old); err != nil || string(got[0].GetData()) != `"x"` || string(got[0].GetMetadata()["encoding"]) != "json/plain" {
		t.Fatalf("the rotated ring read the old payload as %v, %v", got, err)
	}
	if _, err := New(ring(t, k2)).Decode(old); err == nil || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("a ring without k1 opened or did not name it: %v", err)
	}
}

func TestATenantsSealedSigningKeyCannotBeOpenedAsAPayload(t *testing.T) {
	r := ring(t, key(t, "k1"))
	sealed, err := r.Seal([]byte("a private key seed of 32 bytes!!"), []byte("tnt_01ABC"))
	if err != nil {
		t.Fatal(err)
	}
	p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(Encoding), MetadataKeyID: []byte("k1")}, Data: sealed}
	if got, err := New(r).Decode([]*commonpb.Payload{p}); err == nil {
		t.Fatalf("the codec opened a tenant's sealed key: %q", got[0].GetData())
	}
}

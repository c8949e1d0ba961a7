package auditstream_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/auditstream"
)

// verify is the README's receiver check, word for word: a customer's code
// with the standard library only (internal/auditstream cannot be imported
// outside this module). Keep the two the same.
func verify(header string, body, secret []byte) bool {
	var t string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		switch k, v, _ := strings.Cut(part, "="); k {
		case "t":
			t = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	ts, err := strconv.ParseInt(t, 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		return false // no timestamp, or a request replayed later
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(t + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

func TestTheREADMEsReceiverAcceptsWhatTheControlPlaneSignsAndNothingElse(t *testing.T) {
	secret, body := []byte("cpw_example-secret"), []byte(`{"id":"evt_1","action":"tenant.provisioned"}`+"\n")
	now := time.Now()
	if !verify(auditstream.Sign(secret, now, body), body, secret) {
		t.Fatal("a signed batch refused")
	}
	// A second v1 (a rotation) beside the right one.
	if !verify("t="+strconv.FormatInt(now.Unix(), 10)+",v1="+strings.Repeat("0", 64)+","+strings.SplitN(auditstream.Sign(secret, now, body), ",", 2)[1], body, secret) {
		t.Fatal("a header with two signatures, one right, refused")
	}
	for name, h := range map[string]string{
		"another body":   auditstream.Sign(secret, now, append([]byte("x"), body...)),
		"another secret": auditstream.Sign([]byte("cpw_other"), now, body),
		"too old":        auditstream.Sign(secret, now.Add(-6*time.Minute), body),
		"no timestamp":   strings.SplitN(auditstream.Sign(secret, now, body), ",", 2)[1],
		"empty":          "",
	} {
		if verify(h, body, secret) {
			t.Errorf("%s: accepted", name)
		}
	}
}

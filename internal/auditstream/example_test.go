package auditstream_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/intelliauth/controlplane/internal/auditstream"
)

// A receiver of an https stream in Go: read the body, verify its
// signature with the stream's signing secret, skip a batch already seen
// (by its Idempotency-Key), handle each event.
func ExampleVerify() {
	secret := []byte("whsec_shown_once_when_the_stream_was_created")

	receive := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 2<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		err = auditstream.Verify(r.Header.Get("IntelliAuth-Signature"), body, secret, 5*time.Minute, time.Now())
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// if alreadyHandled(r.Header.Get("Idempotency-Key")) { w.WriteHeader(http.StatusOK); return }
		for line := range bytes.Lines(body) { // NDJSON: one event per line
			var event struct{ ID, Action string }
			if err := json.Unmarshal(line, &event); err != nil {
				http.Error(w, "bad event", http.StatusBadRequest)
				return
			}
			fmt.Println(event.Action, event.ID)
		}
		w.WriteHeader(http.StatusNoContent)
	}

	// What the control plane sends, for the example to run.
	body := []byte(`{"id":"evt_1","action":"member.invited"}` + "\n" + `{"id":"evt_2","action":"tenant.created"}` + "\n")
	req := httptest.NewRequest(http.MethodPost, "/audit", bytes.NewReader(body))
	req.Header.Set("IntelliAuth-Signature", auditstream.Sign(secret, time.Now(), body))
	rec := httptest.NewRecorder()
	receive(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// member.invited evt_1
	// tenant.created evt_2
	// 204
}

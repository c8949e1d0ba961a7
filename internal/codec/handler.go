package codec

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// MaxBody bounds a request to the codec endpoint: the UI sends the
// payloads of one event (or one workflow's input) at a time, and Temporal
// refuses a payload over 2 MiB in the first place.
const MaxBody = 4 << 20

// HandlerOptions say who may use the codec endpoint, and for what.
type HandlerOptions struct {
	// Namespace is the one namespace it serves: a request whose
	// X-Namespace names another is refused.
	Namespace string
	// Token is the operators' bearer token (CP_CODEC_TOKEN): a request
	// sends "Authorization: Bearer <token>". Empty: no token opens it.
	Token string
	// Origins are the browser origins (scheme://host:port) that may call
	// it, the Temporal UI's: they get CORS answers, and a request from any
	// other origin is refused whatever it carries.
	Origins []string
	// TrustOrigins admits a request from one of Origins without a token.
	// Only for dev's UI, which serves the codec on its own listener, behind
	// its Host check, and has no sign-in that could carry a token.
	TrustOrigins bool
}

// Handler serves Temporal's remote codec protocol (POST …/encode and
// …/decode with JSON {"payloads": […]}, the X-Namespace header) for the
// Temporal UI and the temporal CLI (--codec-endpoint, --codec-auth).
// Only an operator may use it: what it decodes is the personal data the
// codec keeps out of Temporal.
func Handler(c *Codec, opts HandlerOptions) http.Handler {
	var token [sha256.Size]byte
	if opts.Token != "" {
		token = sha256.Sum256([]byte("Bearer " + opts.Token))
	}
	protocol := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !slices.Contains(opts.Origins, origin) {
				http.Error(w, "the codec endpoint does not answer pages of "+origin, http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			// A preflight carries no credentials: it only learns what the
			// real request may send.
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST, OPTIONS")
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/encode") && !strings.HasSuffix(r.URL.Path, "/decode") {
			http.NotFound(w, r)
			return
		}
		sent := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		byToken := opts.Token != "" && subtle.ConstantTimeCompare(sent[:], token[:]) == 1
		if !byToken && !(opts.TrustOrigins && origin != "") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="temporal-codec"`)
			http.Error(w, "an operator's codec token is required (Authorization: Bearer <CP_CODEC_TOKEN>)", http.StatusUnauthorized)
			return
		}
		if ns := r.Header.Get("X-Namespace"); ns != "" && ns != opts.Namespace {
			http.Error(w, "this codec endpoint serves namespace "+opts.Namespace+" only", http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, "at most 4 MiB of payloads a request", http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, "the request's body could not be read", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		protocol.ServeHTTP(w, r)
	})
}

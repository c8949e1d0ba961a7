package temporalserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// rawGet sends GET path to addr with the Host header given, over a raw
// connection (net/http would send the address it dials), and returns the
// status and the body.
func rawGet(t *testing.T, addr, host, path string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestTheUIRefusesAHostHeaderThatIsNotItsOwn starts the embedded UI and
// asks it for its page and its API with the Host a DNS-rebinding page
// sends (a name of the attacker's that now resolves to 127.0.0.1), and
// with its own names: the UI's address, localhost and [::1] on its port.
// A foreign Host is 421 before the UI sees the request; the UI's own
// names are served.
func TestTheUIRefusesAHostHeaderThatIsNotItsOwn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uiAddr := l.Addr().String()
	l.Close()
	srv, err := Start(Options{FrontendAddr: "127.0.0.1:0", UIAddr: uiAddr, Namespace: "default", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	_, port, _ := net.SplitHostPort(uiAddr)

	// The UI starts in the background: wait until it serves its own name.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", uiAddr, time.Second); err == nil {
			c.Close()
			if code, _ := rawGet(t, uiAddr, uiAddr, "/"); code == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the UI never served its page")
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, tc := range []struct {
		host, path string
		want       int
	}{
		{"rebind.attacker.example:" + port, "/", http.StatusMisdirectedRequest},
		{"rebind.attacker.example:" + port, "/api/v1/namespaces/default/workflows", http.StatusMisdirectedRequest},
		{"rebind.attacker.example", "/api/v1/settings", http.StatusMisdirectedRequest},
		{"127.0.0.1.attacker.example:" + port, "/", http.StatusMisdirectedRequest},
		{"localhost:1" + port, "/", http.StatusMisdirectedRequest},
		{"127.0.0.1:" + port, "/", http.StatusOK},
		{"localhost:" + port, "/", http.StatusOK},
		{"LOCALHOST:" + port, "/", http.StatusOK},
		{"[::1]:" + port, "/", http.StatusOK},
		{"127.0.0.1:" + port, "/api/v1/settings", http.StatusOK},
	} {
		if code, body := rawGet(t, uiAddr, tc.host, tc.path); code != tc.want {
			t.Errorf("GET %s with Host %s: %d, want %d (%.120s)", tc.path, tc.host, code, tc.want, strings.TrimSpace(body))
		}
	}
}

// TestTheUIsCodecEndpointIsOnItsOwnListenerBehindTheHostCheck starts the
// UI with a codec: its settings point the UI at /codec on its own
// listener, the codec is given the UI's origins (every loopback name on
// its port), and a foreign Host reaches neither.
func TestTheUIsCodecEndpointIsOnItsOwnListenerBehindTheHostCheck(t *testing.T) {
	var origins []string
	codec := func(o []string) http.Handler {
		origins = o
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "codec "+r.URL.Path) })
	}
	srv, err := Start(Options{FrontendAddr: "127.0.0.1:0", UIAddr: "127.0.0.1:0", UICodec: codec, Namespace: "default", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	addr := srv.UIAddr()
	_, port, _ := net.SplitHostPort(addr)
	want := []string{"http://127.0.0.1:" + port, "http://localhost:" + port, "http://[::1]:" + port}
	if strings.Join(origins, " ") != strings.Join(want, " ") {
		t.Errorf("the codec's origins = %v, want %v", origins, want)
	}
	if code, body := rawGet(t, addr, addr, "/api/v1/settings"); code != 200 || !strings.Contains(body, `"Endpoint":"http://`+addr+`/codec"`) {
		t.Errorf("settings: %d %s", code, body)
	}
	if code, body := rawGet(t, addr, "localhost:"+port, "/codec/decode"); code != 200 || body != "codec /codec/decode" {
		t.Errorf("the codec through the UI's listener: %d %q", code, body)
	}
	if code, _ := rawGet(t, addr, "rebind.attacker.example:"+port, "/codec/decode"); code != http.StatusMisdirectedRequest {
		t.Errorf("the codec with a foreign Host: %d, want 421", code)
	}
}

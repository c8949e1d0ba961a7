package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/intelliauth/controlplane/internal/config"
)

// frontend is a Temporal frontend that answers the call a client dials
// with, remembering the authorization each call carried.
type frontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	mu    sync.Mutex
	auths []string
}

func (f *frontend) GetSystemInfo(ctx context.Context, _ *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.auths = append(f.auths, md.Get("authorization")...)
	f.mu.Unlock()
	return &workflowservice.GetSystemInfoResponse{}, nil
}

// TestATemporalAPIKeyIsSentOverTLS dials a TLS-only frontend on a free
// port with the options the api and the worker use: the key from
// CP_TEMPORAL_API_KEY arrives as a bearer token, over TLS.
func TestATemporalAPIKeyIsSentOverTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "temporal.test"},
		DNSNames: []string{"temporal.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fe := &frontend{}
	srv := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})))
	workflowservice.RegisterWorkflowServiceServer(srv, fe)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	const apiKey = "tmprl-test-key-0123456789"
	cfg, err := config.Load(config.ModeVerify, func(k string) (string, bool) {
		v, ok := map[string]string{
			"CP_DATABASE_URL":             "postgres://cp@127.0.0.1:1/cp",
			"CP_TEMPORAL_ADDRESS":         ln.Addr().String(),
			"CP_TEMPORAL_API_KEY":         apiKey,
			"CP_TEMPORAL_TLS_CA":          string(certPEM),
			"CP_TEMPORAL_TLS_SERVER_NAME": "temporal.test",
		}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := temporalOptions(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		t.Fatalf("dial the TLS frontend with an API key: %v", err)
	}
	tc.Close()
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if len(fe.auths) == 0 || fe.auths[0] != "Bearer "+apiKey {
		t.Fatalf("the frontend got authorization %q, want the API key as a bearer token", fe.auths)
	}

	// Without the key, no authorization is sent.
	cfg.TemporalAPIKey = ""
	if opts, err = temporalOptions(cfg, zerolog.Nop(), nil); err != nil || opts.Credentials != nil {
		t.Fatalf("credentials without a key: %v, %v", opts.Credentials, err)
	}
}

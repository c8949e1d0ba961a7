package opsgate

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

// handshake dials a listener of cfg with the client certificate and
// reports whether the TLS handshake completed on both sides.
func handshake(t *testing.T, cfg *tls.Config, ca *CA, cert, key []byte) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		served <- c.(*tls.Conn).Handshake()
	}()
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
		&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, ServerName: "localhost"})
	if err == nil {
		// TLS 1.3 reports the server's refusal of the client's certificate
		// on the first read.
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Read(make([]byte, 1))
		c.Close()
	}
	return <-served
}

func TestARevokedOperatorCertificateGetsNoHandshakeAndOthersDo(t *testing.T) {
	ca, err := NewCA("operators")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := ca.IssueServer([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	aliceCert, aliceKey, _ := ca.IssueOperator("alice@acme.test", time.Hour)
	bobCert, bobKey, _ := ca.IssueOperator("bob@acme.test", time.Hour)
	block, _ := pem.Decode(bobCert)
	cfg, err := TLSConfig(srvCert, srvKey, ca.PEM, [][32]byte{sha256.Sum256(block.Bytes)})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, cfg, ca, aliceCert, aliceKey); err != nil {
		t.Fatalf("alice's certificate: %v", err)
	}
	if err := handshake(t, cfg, ca, bobCert, bobKey); err == nil {
		t.Fatal("bob's revoked certificate completed a handshake")
	}
}

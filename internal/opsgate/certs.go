package opsgate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// A CA signs operators' client certificates and the gateway's own.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte
}

// NewCA makes a CA named name, valid for ten years.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// LoadCA reads a CA's certificate and key (PEM).
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !cert.IsCA {
		return nil, errors.New("not an ECDSA certificate authority")
	}
	return &CA{Cert: cert, Key: key, PEM: certPEM}, nil
}

// KeyPEM is the CA's private key in PEM.
func (ca *CA) KeyPEM() []byte { return keyPEM(ca.Key) }

// IssueOperator issues an operator's client certificate naming email, for
// validity: the gateway takes its email address as the operator's name.
func (ca *CA) IssueOperator(email string, validity time.Duration) (certPEM, key []byte, err error) {
	return ca.issue(&x509.Certificate{Subject: pkix.Name{CommonName: email}, EmailAddresses: []string{email},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, validity)
}

// IssueServer issues a server certificate for hosts (names or addresses).
func (ca *CA) IssueServer(hosts []string, validity time.Duration) (certPEM, key []byte, err error) {
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: hosts[0]}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, validity)
}

func (ca *CA) issue(tmpl *x509.Certificate, validity time.Duration) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = serial(), time.Now().Add(-time.Hour), time.Now().Add(validity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM(key), nil
}

func keyPEM(key *ecdsa.PrivateKey) []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// DevFiles are the files DevCertificates keeps under its directory.
type DevFiles struct {
	CA, Cert, Key, OperatorCert, OperatorKey string
}

// DevCertificates makes, once, what dev's gateway needs under dir: a CA of
// operators, the gateway's certificate for loopback, and one operator's
// client certificate naming operatorEmail. Later starts reuse them.
func DevCertificates(dir, operatorEmail string) (DevFiles, error) {
	f := DevFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "gateway.pem"), Key: filepath.Join(dir, "gateway-key.pem"),
		OperatorCert: filepath.Join(dir, "operator.pem"), OperatorKey: filepath.Join(dir, "operator-key.pem")}
	if _, err := os.Stat(f.OperatorKey); err == nil {
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	ca, err := NewCA("IntelliAuth dev operators")
	if err != nil {
		return f, err
	}
	cert, key, err := ca.IssueServer([]string{"localhost", "127.0.0.1", "::1"}, 10*365*24*time.Hour)
	if err != nil {
		return f, err
	}
	opCert, opKey, err := ca.IssueOperator(operatorEmail, 10*365*24*time.Hour)
	if err != nil {
		return f, err
	}
	// The operator's key is written last: its presence says all are there.
	for _, w := range []struct {
		path string
		b    []byte
	}{{filepath.Join(dir, "ca-key.pem"), ca.KeyPEM()}, {f.CA, ca.PEM}, {f.Cert, cert}, {f.Key, key}, {f.OperatorCert, opCert}, {f.OperatorKey, opKey}} {
		if err := os.WriteFile(w.path, w.b, 0o600); err != nil {
			return f, fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	return f, nil
}

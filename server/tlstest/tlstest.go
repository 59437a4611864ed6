// Package tlstest makes throwaway certificates (a CA, leaves it signs,
// self-signed ones, expired or near expiry) for fastws's tests and the
// bench only; nothing in the daemon imports it. It uses only the
// standard library.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a throwaway certificate authority. It is safe for concurrent
// use: its fields are not changed after NewCA.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte // Cert, PEM-encoded
	Pool *x509.CertPool
}

// NewCA makes a P-256 CA named "fastws test CA", valid from an hour ago
// to notAfter.
func NewCA(notAfter time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fastws test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, PEM: PEMCert(der), Pool: pool}, nil
}

// Leaf describes a server certificate for CommonName "localhost" and
// the IP 127.0.0.1.
type Leaf struct {
	Serial              int64
	DNSNames            []string
	NotBefore, NotAfter time.Time
	// ServerAuth sets the digital-signature key usage and the server-auth
	// extended key usage.
	ServerAuth bool
}

// Issue makes the leaf l, signed by ca, or self-signed if ca is nil, with
// a fresh P-256 key. It returns the certificate's DER and the key.
func (ca *CA) Issue(l Leaf) (der []byte, key *ecdsa.PrivateKey, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("leaf key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(l.Serial), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: l.DNSNames, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: l.NotBefore, NotAfter: l.NotAfter,
	}
	if l.ServerAuth {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.Cert, ca.Key
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("leaf certificate: %w", err)
	}
	return der, key, nil
}

// PEMCert returns der as a PEM CERTIFICATE block.
func PEMCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// PEMKey returns key as a PEM PKCS#8 PRIVATE KEY block.
func PEMKey(key *ecdsa.PrivateKey) ([]byte, error) {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

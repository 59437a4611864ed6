package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The TLS keys of an [instance.NAME] section. Both or neither: an
// instance with them speaks TLS (https:// and wss:// for websocket, TLS
// for telnet) and no plain text.
const (
	keyTLSCert = "tlsCert"
	keyTLSKey  = "tlsKey"
)

// NearExpiry is how close to its end a certificate makes `check` warn.
const NearExpiry = 14 * 24 * time.Hour

// TLS reports whether the instance terminates TLS (tlsCert and tlsKey set).
func (i Instance) TLS() bool { return i.TLSCert != "" }

// setTLSKey records a tlsCert or tlsKey value, resolved against the
// config file's folder, and returns what is wrong with it, or "".
func (p *parser) setTLSKey(in *Instance, key, v string) string {
	if v == "" {
		return "" // off, as when the key is left out
	}
	if !filepath.IsAbs(v) {
		v = filepath.Join(p.dir, v)
	}
	v = filepath.Clean(v)
	if key == keyTLSCert {
		in.TLSCert = v
	} else {
		in.TLSKey = v
	}
	return ""
}

// checkTLSPair reports a section that sets one of tlsCert and tlsKey
// without the other; the instance's TLS is then off, so that nothing
// half-configured runs.
func (p *parser) checkTLSPair(in *Instance) {
	set := map[string]bool{keyTLSCert: in.TLSCert != "", keyTLSKey: in.TLSKey != ""}
	for _, k := range [][2]string{{keyTLSCert, keyTLSKey}, {keyTLSKey, keyTLSCert}} {
		if set[k[0]] && !set[k[1]] {
			p.errs = append(p.errs, &Error{File: p.file, Line: p.ix.headerLine(in.Section),
				Section: in.Section, Key: k[1], Msg: "missing: " + k[0] + " is set, and tlsCert and tlsKey go together"})
		}
	}
	if in.TLSCert == "" || in.TLSKey == "" {
		in.TLSCert, in.TLSKey = "", ""
	}
}

// CertInfo describes an instance's certificate as `check` shows it.
type CertInfo struct {
	Instance string    // instanceName
	File     string    // tlsCert, absolute
	Names    []string  // the leaf's DNS names and IP addresses, or its common name
	NotAfter time.Time // when the leaf expires
	// Chained is false when the leaf is not self-signed and the file
	// holds no intermediate certificate after it: most clients then
	// cannot build a path to a root they trust.
	Chained bool
}

// Warnings returns what `check` warns about ci at now: an end within
// NearExpiry, a missing intermediate chain.
func (ci CertInfo) Warnings(now time.Time) []string {
	var w []string
	if left := ci.NotAfter.Sub(now); left < NearExpiry {
		w = append(w, fmt.Sprintf("instance %s: tlsCert %s: certificate expires %s, in %s (within 14 days): renew it and run 'fastws reload'",
			ci.Instance, ci.File, ci.NotAfter.UTC().Format(time.DateTime+" MST"), left.Round(time.Hour)))
	}
	if !ci.Chained {
		w = append(w, fmt.Sprintf("instance %s: tlsCert %s: no intermediate certificate after the leaf, which is not self-signed: clients that lack the chain will refuse it (put the issuer's chain after the leaf, as in a fullchain.pem)",
			ci.Instance, ci.File))
	}
	return w
}

// LoadCertificate reads and checks the certificate pair of ic, which
// must have TLS: both files readable, the first PEM certificate of
// tlsCert (the leaf, which any chain follows) matching tlsKey, the leaf
// valid at now. The error names the instance and the file at fault.
func LoadCertificate(ic Instance, now time.Time) (*tls.Certificate, CertInfo, error) {
	info := CertInfo{Instance: ic.Name, File: ic.TLSCert}
	fail := func(key, file, format string, args ...any) (*tls.Certificate, CertInfo, error) {
		return nil, info, fmt.Errorf("instance %s: %s %s: %s", ic.Name, key, file, fmt.Sprintf(format, args...))
	}
	certPEM, err := os.ReadFile(ic.TLSCert)
	if err != nil {
		return fail(keyTLSCert, ic.TLSCert, "cannot read it: %v", pathless(err))
	}
	keyPEM, err := os.ReadFile(ic.TLSKey)
	if err != nil {
		return fail(keyTLSKey, ic.TLSKey, "cannot read it: %v", pathless(err))
	}
	var ders [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		return fail(keyTLSCert, ic.TLSCert, "no PEM certificate in it")
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return fail(keyTLSCert, ic.TLSCert, "bad certificate: %v", err)
	}
	info.NotAfter = leaf.NotAfter
	info.Names = append(info.Names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		info.Names = append(info.Names, ip.String())
	}
	if len(info.Names) == 0 && leaf.Subject.CommonName != "" {
		info.Names = []string{leaf.Subject.CommonName}
	}
	// Not CheckSignatureFrom(leaf): a self-signed leaf is no CA, which
	// CheckSignatureFrom requires of the parent.
	selfSigned := bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
	info.Chained = selfSigned || len(ders) > 1
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// X509KeyPair names neither file: the certificate parsed above,
		// so what is wrong is the key, or the two together.
		if strings.Contains(err.Error(), "does not match") {
			return fail(keyTLSKey, ic.TLSKey, "the key does not match the certificate in %s", ic.TLSCert)
		}
		return fail(keyTLSKey, ic.TLSKey, "bad private key: %v", strings.TrimPrefix(err.Error(), "tls: "))
	}
	if now.After(leaf.NotAfter) {
		return fail(keyTLSCert, ic.TLSCert, "certificate expired %s", leaf.NotAfter.UTC().Format(time.DateTime+" MST"))
	}
	if now.Before(leaf.NotBefore) {
		return fail(keyTLSCert, ic.TLSCert, "certificate not valid before %s", leaf.NotBefore.UTC().Format(time.DateTime+" MST"))
	}
	pair.Leaf = leaf
	return &pair, info, nil
}

// CheckCertificates loads every TLS instance's pair of c, as start does,
// and returns what each holds, and every failure joined.
func CheckCertificates(c *Config, now time.Time) ([]CertInfo, error) {
	var infos []CertInfo
	var errs []error
	for _, ic := range c.Instances {
		if !ic.TLS() {
			continue
		}
		_, info, err := LoadCertificate(ic, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		infos = append(infos, info)
	}
	return infos, errors.Join(errs...)
}

// pathless returns a file error without the path the caller names anyway.
func pathless(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTLSKeys(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "c.pem")
	tests := []struct {
		name, keys        string
		wantCert, wantKey string // relative to the config's folder unless absolute
		wantErr           string
	}{
		{"off", "", "", "", ""},
		{"empty_is_off", "tlsCert =\ntlsKey =\n", "", "", ""},
		{"relative", "tlsCert = certs/site.crt\ntlsKey = ./certs/../site.key\n", "certs/site.crt", "site.key", ""},
		{"absolute", "tlsCert = " + abs + "\ntlsKey = k.pem\n", abs, "k.pem", ""},
		{"cert_alone", "tlsCert = a.crt\n", "", "", "config.ini:1: [instance.a] tlsKey: missing: tlsCert is set, and tlsCert and tlsKey go together"},
		{"key_alone", "tlsCert =\ntlsKey = a.key\n", "", "", "config.ini:1: [instance.a] tlsCert: missing: tlsKey is set, and tlsCert and tlsKey go together"},
	}
	dir, _ := filepath.Abs(".")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("config.ini", []byte(oneInstance+tc.keys))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			in := c.Instances[0]
			res := func(p string) string {
				if p == "" || filepath.IsAbs(p) {
					return p
				}
				return filepath.Join(dir, p)
			}
			if in.TLSCert != res(tc.wantCert) || in.TLSKey != res(tc.wantKey) || in.TLS() != (tc.wantCert != "") {
				t.Errorf("got %q, %q, TLS %v; want %q, %q", in.TLSCert, in.TLSKey, in.TLS(), res(tc.wantCert), res(tc.wantKey))
			}
		})
	}
}

// FuzzLoadCertificate feeds hostile bytes as both files: LoadCertificate
// never panics, and a refusal names the instance and one of the files.
func FuzzLoadCertificate(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte(""), []byte("x"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n"), []byte("-----BEGIN EC PRIVATE KEY-----\n\n-----END EC PRIVATE KEY-----\n"))
	dir := f.TempDir()
	ic := Instance{Name: "Fuzz", TLSCert: filepath.Join(dir, "c.pem"), TLSKey: filepath.Join(dir, "k.pem")}
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		if err := os.WriteFile(ic.TLSCert, cert, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ic.TLSKey, key, 0o600); err != nil {
			t.Fatal(err)
		}
		pair, _, err := LoadCertificate(ic, time.Now())
		if err == nil {
			if pair == nil || pair.Leaf == nil {
				t.Fatal("no error and no certificate")
			}
			return
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "instance Fuzz: tlsCert "+ic.TLSCert+": ") && !strings.HasPrefix(msg, "instance Fuzz: tlsKey "+ic.TLSKey+": ") {
			t.Fatalf("error %q names neither file", msg)
		}
	})
}

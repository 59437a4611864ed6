package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/fastws/fastws/server/config"
)

// checkCertificates loads the certificate pair of every TLS instance of
// cfg, as the daemon will, and refuses a broken one: a missing or
// unreadable file, a key that does not match, an expired certificate.
// With show set (check), it prints each certificate's names and expiry,
// and warns on stderr when it ends within 14 days or lacks its chain.
func (e *env) checkCertificates(cfg *config.Config, show bool) error {
	now := time.Now()
	infos, err := config.CheckCertificates(cfg, now)
	if err != nil {
		return fmt.Errorf("certificate error(s):\n%s", indent(err.Error()))
	}
	if !show {
		return nil
	}
	for _, ci := range infos {
		fmt.Fprintf(e.stdout, "instance %s: certificate %s for %s, expires %s\n",
			ci.Instance, ci.File, strings.Join(ci.Names, ", "), ci.NotAfter.UTC().Format(time.DateTime+" MST"))
		for _, w := range ci.Warnings(now) {
			fmt.Fprintln(e.stderr, "warning: "+w)
		}
	}
	return nil
}

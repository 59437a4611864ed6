package config

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that any input yields either a valid Config or Errors of
// one-line messages, and that scan's statement-by-statement reading agrees
// with ini.v1's reading of the whole file (agree).
func FuzzParse(f *testing.F) {
	shipped, err := os.ReadFile(shippedPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(shipped)
	// The shipped file cut after every line: sections and keys go missing.
	for i, b := range shipped {
		if b == '\n' {
			f.Add(shipped[:i+1])
		}
	}
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := agree(data); err != nil {
			t.Fatalf("scan disagrees with ini.v1: %v\ninput: %q", err, data)
		}
		c, err := Parse("config.ini", data)
		if err != nil {
			if c != nil {
				t.Fatalf("got a Config and an error: %v", err)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("got error %T %q, want non-empty Errors", err, err)
			}
			for _, e := range errs {
				line := e.Error()
				if !strings.HasPrefix(line, "config.ini") || strings.Contains(line, "\n") {
					t.Fatalf("got error line %q, want one line naming the file", line)
				}
				if e.Line == 0 && strings.HasPrefix(e.Msg, "ini: ") {
					t.Fatalf("scan disagrees with ini.v1: %s\ninput: %q", line, data)
				}
				if e.Line > bytes.Count(data, []byte("\n"))+1 {
					t.Fatalf("got line %d, past the end of the input: %s", e.Line, line)
				}
			}
			return
		}
		if c == nil || len(c.Instances) == 0 {
			t.Fatalf("got Config %+v and no error, want at least one instance", c)
		}
		for _, in := range c.Instances {
			switch {
			case in.Port < 1 || in.Port > 65535,
				in.ChildProcessCount < 1 || in.ChildProcessCount > maxChildProcesses,
				in.Protocol != ProtocolTelnet && in.Protocol != ProtocolWebSocket,
				in.Name == "", in.Host == "",
				in.Limits.MaxPackageSize < minPackageSize || in.Limits.MaxPackageSize > maxPackageSize,
				in.Limits.MaxSendBuffer < in.Limits.MaxPackageSize,
				in.Limits.MessageBurst < 1,
				in.Limits.BytesPerSecond > 0 && in.Limits.BytesBurst > 0 && in.Limits.BytesBurst < in.Limits.MaxPackageSize:
				t.Fatalf("got invalid instance %+v", in)
			}
		}
	})
}

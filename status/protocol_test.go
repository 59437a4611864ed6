package status

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    call
		wantErr string
	}{
		{"status", `{"cmd":"status"}`, call{cmd: cmdStatus}, ""},
		{"connections", `{"cmd":"connections"}`, call{cmd: cmdConnections}, ""},
		{"reload", `{"cmd":"reload"}`, call{cmd: cmdReload}, ""},
		{"stop", `{"cmd":"stop"}`, call{cmd: cmdStop}, ""},
		{"stop with timeout", `{"cmd":"stop","timeout":"1m30s"}`, call{cmd: cmdStop, timeout: 90 * time.Second}, ""},
		{"stop with zero timeout", `{"cmd":"stop","timeout":"0s"}`, call{cmd: cmdStop}, ""},
		{"whitespace", " \t{ \"cmd\" : \"status\" }\r", call{cmd: cmdStatus}, ""},
		{"unknown field", `{"cmd":"status","x":1}`, call{cmd: cmdStatus}, ""},
		{"empty", ``, call{}, "bad request"},
		{"not json", `status`, call{}, "bad request"},
		{"string", `"status"`, call{}, "bad request"},
		{"empty cmd", `{"cmd":""}`, call{}, `no "cmd"`},
		{"case matters", `{"cmd":"STATUS"}`, call{}, `unknown command "STATUS"`},
		{"timeout as number", `{"cmd":"stop","timeout":10}`, call{}, "bad request"},
		{"negative timeout", `{"cmd":"stop","timeout":"-2s"}`, call{}, "is not a duration"},
		{"timeout on reload", `{"cmd":"reload","timeout":"2s"}`, call{}, "timeout applies to stop only"},
		{"deadline", `{"cmd":"reload","deadline":"2026-01-02T15:04:05.25Z"}`, call{cmd: cmdReload, deadline: time.Date(2026, 1, 2, 15, 4, 5, 250e6, time.UTC)}, ""},
		{"deadline with zone", `{"cmd":"status","deadline":"2026-01-02T16:04:05+01:00"}`, call{cmd: cmdStatus, deadline: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)}, ""},
		{"deadline as number", `{"cmd":"status","deadline":1700000000}`, call{}, "bad request"},
		{"deadline not a time", `{"cmd":"status","deadline":"soon"}`, call{}, "not an RFC 3339 time"},
		{"deadline without zone", `{"cmd":"status","deadline":"2026-01-02T15:04:05"}`, call{}, "not an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRequest([]byte(tt.line))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.cmd != tt.want.cmd || got.timeout != tt.want.timeout || !got.deadline.Equal(tt.want.deadline) {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestReadLine(t *testing.T) {
	const max = 8
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{"line", "abc\nrest", "abc", nil},
		{"longest", "12345678\n", "12345678", nil},
		{"one too long", "123456789\n", "", errLineTooLong},
		{"long without newline", "123456789", "", errLineTooLong},
		{"last line without newline", "abc", "abc", nil},
		{"longest without newline", "12345678", "12345678", nil},
		{"empty line", "\n", "", nil},
		{"nothing", "", "", io.EOF},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"byte by byte", iotest.OneByteReader},
		{"data with EOF", iotest.DataErrReader},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				got, err := readLine(rd.wrap(strings.NewReader(tt.in)), max)
				if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
					t.Errorf("got %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
				}
			})
		}
	}
}

func TestReadLineReadsNoFurther(t *testing.T) {
	r := strings.NewReader(strings.Repeat("x", 100))
	if _, err := readLine(r, 8); !errors.Is(err, errLineTooLong) {
		t.Fatalf("got %v, want errLineTooLong", err)
	}
	if got, want := r.Len(), 100-9; got != want {
		t.Errorf("got %d bytes left unread, want %d", got, want)
	}
}

// FuzzParseRequest checks that any request line either decodes to a known
// command or is refused with a message, and never panics.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"cmd":"status"}`, `{"cmd":"connections"}`, `{"cmd":"reload"}`,
		`{"cmd":"stop","timeout":"10s"}`, `{"cmd":"stop","timeout":"-1s"}`,
		`{"cmd":"nope"}`, `{}`, `null`, `[]`, `{"cmd":"status"`, "\xff",
		`{"cmd":"stop","timeout":"9223372036854775807ns"}`,
		`{"cmd":"reload","deadline":"2026-01-02T15:04:05.25Z"}`, `{"cmd":"status","deadline":"9999-12-31T23:59:59.999999999-23:59"}`,
		`{"cmd":"status","deadline":"0000-01-01T00:00:00Z"}`,
	} {
		f.Add([]byte(s))
		// Prefixes: what a client cut off mid-line sends.
		for i := range len(s) {
			f.Add([]byte(s[:i]))
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := parseRequest(line)
		if err != nil {
			if c.cmd != "" || c.timeout != 0 || !c.deadline.IsZero() {
				t.Errorf("got %+v with error %v, want the zero call", c, err)
			}
			if err.Error() == "" {
				t.Error("got an error with no text")
			}
			return
		}
		if !slices.Contains(commands, c.cmd) {
			t.Errorf("accepted unknown command %q", c.cmd)
		}
		if c.timeout < 0 || (c.cmd != cmdStop && c.timeout != 0) {
			t.Errorf("accepted timeout %s for %q", c.timeout, c.cmd)
		}
	})
}

// FuzzReadLine checks readLine's bound on any input, read in pieces.
func FuzzReadLine(f *testing.F) {
	f.Add([]byte(`{"cmd":"status"}`+"\n"), 16)
	f.Add([]byte("abc"), 2)
	f.Add([]byte("\n\n"), 0)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		got, err := readLine(iotest.HalfReader(bytes.NewReader(in)), max)
		if len(got) > max {
			t.Fatalf("got a line of %d bytes, max %d", len(got), max)
		}
		if err != nil {
			return
		}
		if bytes.IndexByte(got, '\n') >= 0 || !bytes.HasPrefix(in, got) {
			t.Errorf("got %q from %q", got, in)
		}
	})
}

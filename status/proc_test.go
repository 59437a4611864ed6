package status

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestParseStatm(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		page   int
		want   uint64
		wantOK bool
	}{
		{"typical", "5915 1234 890 300 0 2000 0\n", 4096, 1234 * 4096, true},
		{"large pages", "10 3 1 1 0 1 0", 65536, 3 * 65536, true},
		{"one field", "5915\n", 4096, 0, false},
		{"not a number", "5915 x 890\n", 4096, 0, false},
		{"empty", "", 4096, 0, false},
		{"no page size", "1 2 3", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseStatm([]byte(tt.in), tt.page)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   uint64
		wantOK bool
	}{
		{"typical", "Name:\tfastws\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t7\n", 5120 * 1024, true},
		{"last line without newline", "Name:\tx\nVmRSS:\t1 kB", 1024, true},
		{"missing", "Name:\tx\nThreads:\t1\n", 0, false},
		{"other unit", "VmRSS:\t5 MB\n", 0, false},
		{"not a number", "VmRSS:\tlots kB\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseVmRSS([]byte(tt.in))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestProcessHelpers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	t.Run("ReadRSS", func(t *testing.T) {
		// The test binary's heap alone is larger than 1 MiB; its RSS is
		// far below 1 TiB.
		if got := ReadRSS(); got < 1<<20 || got > 1<<40 {
			t.Errorf("got RSS %d bytes, want between 1 MiB and 1 TiB", got)
		}
	})
	t.Run("OpenFiles", func(t *testing.T) {
		before := OpenFiles()
		if before < 3 {
			t.Fatalf("got %d open files, want at least stdin, stdout and stderr", before)
		}
		const n = 3
		for i := range n {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"+string(rune('a'+i))))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
		}
		if got, want := OpenFiles(), before+n; got != want {
			t.Errorf("after opening %d files: got %d open files, want %d", n, got, want)
		}
	})
	t.Run("MaxOpenFiles", func(t *testing.T) {
		if got := MaxOpenFiles(); got < uint64(OpenFiles()) {
			t.Errorf("got limit %d, below the %d files open now", got, OpenFiles())
		}
	})
}

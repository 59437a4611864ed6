package status

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// ReadRSS returns the resident set size of the calling process in bytes:
// /proc/self/statm's resident pages times the page size, or, if that cannot
// be read, VmRSS from /proc/self/status. It returns 0 where neither exists
// (not Linux). It is safe for concurrent use and costs one small read.
func ReadRSS() uint64 {
	if b, ok := procStatm.read(); ok {
		if n, ok := parseStatm(b, os.Getpagesize()); ok {
			return n
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		if n, ok := parseVmRSS(b); ok {
			return n
		}
	}
	return 0
}

// procFile is a /proc file kept open from first use, so that it can still
// be read when the process has run out of file descriptors: that is when
// the numbers matter.
type procFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

var (
	procStatm = &procFile{path: "/proc/self/statm"}
	procFDs   = &procFile{path: "/proc/self/fd"}
)

// openLocked returns the kept file, opening it if needed. Callers hold mu.
func (p *procFile) openLocked() *os.File {
	if p.f == nil {
		p.f, _ = os.Open(p.path)
	}
	return p.f
}

// read returns the file's contents, read from offset 0.
func (p *procFile) read() ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.openLocked()
	if f == nil {
		return nil, false
	}
	b := make([]byte, 256)
	n, err := f.ReadAt(b, 0)
	if n == 0 && err != nil {
		return nil, false
	}
	return b[:n], true
}

// parseStatm returns the resident size in bytes from /proc/PID/statm, whose
// fields are counts of pages: size resident shared text lib data dt.
func parseStatm(b []byte, pageSize int) (uint64, bool) {
	f := bytes.Fields(b)
	if len(f) < 2 || pageSize <= 0 {
		return 0, false
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(pageSize), true
}

// parseVmRSS returns the resident size in bytes from the
// "VmRSS:    1234 kB" line of /proc/PID/status.
func parseVmRSS(b []byte) (uint64, bool) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		kib, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, false
		}
		return kib * 1024, true
	}
	return 0, false
}

// OpenFiles returns the number of file descriptors the calling process has
// open, counted in /proc/self/fd, not including the one kept open to count
// them (so it works when no descriptor is left). It returns 0 where /proc
// cannot be read. It is safe for concurrent use; its cost grows with the
// count (one directory read).
func OpenFiles() int {
	procFDs.mu.Lock()
	defer procFDs.mu.Unlock()
	f := procFDs.openLocked()
	if f == nil {
		return 0
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0
	}
	names, err := f.Readdirnames(-1)
	if err != nil || len(names) == 0 {
		return 0
	}
	return len(names) - 1 // the descriptor reading the folder
}

// MaxOpenFiles returns the soft RLIMIT_NOFILE of the calling process, the
// ceiling for OpenFiles (Go raises it to the hard limit at start-up), or 0
// if it cannot be read. RLIM_INFINITY is returned as is (the largest uint64),
// and RenderStatus shows it as "unlimited".
func MaxOpenFiles() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return uint64(lim.Cur)
}

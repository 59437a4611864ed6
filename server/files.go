package server

import (
	"sync/atomic"
	"syscall"
)

// files keeps the last of the process's file descriptors for addresses
// that hold few connections, so that one address, or a few, cannot take
// every descriptor and lock everyone else out: past maxConnectionsPerIP
// (or with it off), a flood from a handful of addresses fills the
// descriptors up to the reserve, and a client from any other address is
// still welcomed.
//
// The reserve is counted in connections against the soft RLIMIT_NOFILE,
// which covers the daemon's own descriptors (listeners, event loops, the
// acceptors' spares, the status socket, the log) with room to spare: a
// sixty-fourth of the limit, at least minReserve. At 20,000 descriptors
// that is 312, so 19,000 connections from a few addresses (the bench's
// idle case) still fit.
//
// A TLS connection holds one descriptor, as a plain one does: its TLS
// runs on the event loop (server/tls.go), with no socket pair, so the
// reserve counts both alike.
type files struct {
	open        atomic.Int64 // connections open in every instance
	reserveFrom int64        // open connections from which on the reserve applies
}

// minReserve is the smallest reserve, in connections; reserveShare is the
// most connections an address may already hold and still be admitted
// into the reserve.
const (
	minReserve   = 32
	reserveShare = 4
)

// newFiles sizes the reserve for the process's descriptor limit.
func newFiles() *files {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<40 {
		return &files{reserveFrom: 1 << 62} // no limit we can read: no reserve
	}
	n := int64(lim.Cur)
	return &files{reserveFrom: n - max(n/64, minReserve)}
}

// admits reports whether an address that holds held connections may open
// one more, as far as descriptors go.
func (f *files) admits(held int) bool {
	return held < reserveShare || f.open.Load() < f.reserveFrom
}

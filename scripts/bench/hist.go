package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latencies are kept in a log-linear histogram of microseconds: exact
// below 64 µs, then 32 buckets per power of two (about 3% wide), up to
// more than an hour.
const histBuckets = 1024

func bucketOf(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < 64 {
		return int(us)
	}
	e := bits.Len64(us) - 6
	i := e*32 + int(us>>e)
	return min(i, histBuckets-1)
}

// bucketValue is the lower bound of bucket i.
func bucketValue(i int) time.Duration {
	if i < 64 {
		return time.Duration(i) * time.Microsecond
	}
	e := i/32 - 1
	m := uint64(i%32 + 32)
	return time.Duration(m<<e) * time.Microsecond
}

// hist is a latency histogram safe for concurrent use.
type hist struct {
	b   [histBuckets]atomic.Uint64
	max atomic.Int64
}

func (h *hist) add(d time.Duration) {
	h.b[bucketOf(d)].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// histSnap is a histogram's counts, sparse, as workers report them.
type histSnap struct {
	Buckets map[int]uint64 `json:"buckets"`
	N       uint64         `json:"n"`
	Max     time.Duration  `json:"max"`
}

func (h *hist) snap() histSnap {
	s := histSnap{Buckets: map[int]uint64{}, Max: time.Duration(h.max.Load())}
	for i := range h.b {
		if v := h.b[i].Load(); v > 0 {
			s.Buckets[i] = v
			s.N += v
		}
	}
	return s
}

func (s *histSnap) merge(o histSnap) {
	if s.Buckets == nil {
		s.Buckets = map[int]uint64{}
	}
	for i, v := range o.Buckets {
		s.Buckets[i] += v
	}
	s.N += o.N
	s.Max = max(s.Max, o.Max)
}

// quantile returns the q quantile (0 < q <= 1), as the upper bound of its
// bucket so it never understates.
func (s *histSnap) quantile(q float64) time.Duration {
	if s.N == 0 {
		return 0
	}
	rank := uint64(q*float64(s.N) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range histBuckets {
		seen += s.Buckets[i]
		if seen >= rank {
			return min(bucketValue(i+1), s.Max)
		}
	}
	return s.Max
}

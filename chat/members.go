package chat

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// pageSize is the number of uids a page of the member table covers.
const pageSize = 64

// memberTable maps uids to members, for lookups that take no lock and
// touch little memory: every private message looks its recipient up, on
// every event loop at once.
//
// uids are handed out in increasing order and never reused, so the table
// is a directory of pages: page p holds the members with uids p*pageSize
// to p*pageSize+pageSize-1, one slot each. A lookup is the directory (small,
// read by everyone and rarely written, so it stays in every core's cache),
// then one slot. sync.Map, which this replaces, walks a hash trie of four
// or five nodes per lookup, each a likely cache miss with thousands of
// members.
//
// A page is freed when the last of its members leaves once all its uids
// have been handed out, so memory follows the members online (about 9
// bytes each), not the uids ever handed out. The directory is replaced
// whole when a page is added or freed, at most twice per pageSize joins.
type memberTable struct {
	dir    atomic.Pointer[map[uint64]*memberPage] // never nil after init
	keys   atomic.Pointer[[]uint64]               // dir's page numbers, sorted; stored after dir
	mu     sync.Mutex                             // serialises writers
	online atomic.Int64
}

type memberPage struct {
	slot [pageSize]atomic.Pointer[Member]
	live atomic.Int32 // members in slot; written under memberTable.mu
}

func (t *memberTable) init() {
	t.dir.Store(&map[uint64]*memberPage{})
	t.keys.Store(new([]uint64))
}

// load returns the member with uid, or nil.
func (t *memberTable) load(uid uint64) *Member {
	if p := (*t.dir.Load())[uid/pageSize]; p != nil {
		return p.slot[uid%pageSize].Load()
	}
	return nil
}

// add enters m, whose uid is new, and returns the members online.
func (t *memberTable) add(m *Member) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	dir := *t.dir.Load()
	p := dir[m.uid/pageSize]
	if p == nil {
		p = new(memberPage)
		t.replace(func(next map[uint64]*memberPage) { next[m.uid/pageSize] = p })
	}
	p.live.Add(1)
	p.slot[m.uid%pageSize].Store(m)
	return t.online.Add(1)
}

// remove takes m out and reports whether it was in, and the members online
// before. lastUID is the last uid handed out, which says whether m's page
// can still get members.
func (t *memberTable) remove(m *Member, lastUID uint64) (bool, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := (*t.dir.Load())[m.uid/pageSize]
	if p == nil || !p.slot[m.uid%pageSize].CompareAndSwap(m, nil) {
		return false, 0
	}
	n := t.online.Add(-1) + 1
	if p.live.Add(-1) == 0 && lastUID >= (m.uid/pageSize+1)*pageSize-1 {
		t.replace(func(next map[uint64]*memberPage) { delete(next, m.uid/pageSize) })
	}
	return true, n
}

// replace publishes a copy of the directory changed by edit. t.mu is held.
func (t *memberTable) replace(edit func(map[uint64]*memberPage)) {
	next := maps.Clone(*t.dir.Load())
	edit(next)
	keys := slices.Sorted(maps.Keys(next))
	t.dir.Store(&next)
	t.keys.Store(&keys)
}

// each calls fn for every member online, in no particular order.
func (t *memberTable) each(fn func(*Member)) {
	for _, p := range *t.dir.Load() {
		for i := range p.slot {
			if m := p.slot[i].Load(); m != nil {
				fn(m)
			}
		}
	}
}

// ranked calls fn for at most n members online in uid order, after
// skipping the first skip of them. It costs O(pages) plus the members it
// visits, whatever the room's size: whole pages are skipped by their live
// count. Members that join or leave meanwhile may or may not be seen.
func (t *memberTable) ranked(skip, n int, fn func(*Member)) {
	dir := *t.dir.Load()
	for _, k := range *t.keys.Load() {
		if n <= 0 {
			return
		}
		p := dir[k]
		if p == nil {
			continue // freed since the keys were stored
		}
		if live := int(p.live.Load()); skip >= live {
			skip -= live
			continue
		}
		for i := range p.slot {
			m := p.slot[i].Load()
			switch {
			case m == nil:
			case skip > 0:
				skip--
			case n > 0:
				fn(m)
				n--
			}
		}
	}
}

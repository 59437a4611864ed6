package chat

import (
	"sync"
	"testing"
)

func newTable() *memberTable {
	t := &memberTable{}
	t.init()
	return t
}

func TestMemberTable(t *testing.T) {
	tab := newTable()
	ms := map[uint64]*Member{}
	for uid := uint64(1); uid <= 200; uid++ {
		ms[uid] = &Member{uid: uid}
		if n := tab.add(ms[uid]); n != int64(uid) {
			t.Fatalf("add uid %d: %d online, want %d", uid, n, uid)
		}
	}
	for uid := uint64(0); uid <= 300; uid++ {
		if got := tab.load(uid); got != ms[uid] {
			t.Errorf("load(%d) = %p, want %p", uid, got, ms[uid])
		}
	}
	if in, _ := tab.remove(&Member{uid: 5}, 200); in {
		t.Error("remove of a member not in the table reported it in")
	}

	// Page 1 (uids 64-127) empties with every uid handed out: freed.
	for uid := uint64(64); uid < 128; uid++ {
		in, n := tab.remove(ms[uid], 200)
		if !in || n != int64(200-(uid-64)) {
			t.Fatalf("remove uid %d: in %v, %d online before, want true, %d", uid, in, n, 200-(uid-64))
		}
		delete(ms, uid)
	}
	if _, ok := (*tab.dir.Load())[1]; ok {
		t.Error("page 1 is empty and complete, but still in the directory")
	}
	// Page 3 (uids 192-255) empties while uids 201-255 are still to come:
	// kept, and a later uid goes in.
	for uid := uint64(192); uid <= 200; uid++ {
		tab.remove(ms[uid], 200)
		delete(ms, uid)
	}
	if _, ok := (*tab.dir.Load())[3]; !ok {
		t.Error("page 3 may still get members, but was freed")
	}
	ms[201] = &Member{uid: 201}
	tab.add(ms[201])
	if got := tab.load(201); got != ms[201] {
		t.Errorf("load(201) = %p, want %p", got, ms[201])
	}

	seen := map[uint64]bool{}
	tab.each(func(m *Member) { seen[m.uid] = true })
	if len(seen) != len(ms) || tab.online.Load() != int64(len(ms)) {
		t.Errorf("each saw %d members, online says %d, want %d", len(seen), tab.online.Load(), len(ms))
	}
	for uid := range ms {
		if !seen[uid] {
			t.Errorf("each missed uid %d", uid)
		}
	}
}

// TestMemberTableConcurrent looks members up while others join and leave;
// run with -race.
func TestMemberTableConcurrent(t *testing.T) {
	tab := newTable()
	const n = 5000
	ms := make([]*Member, n+1)
	for uid := range ms {
		ms[uid] = &Member{uid: uint64(uid)}
	}
	stable := ms[1]
	tab.add(stable)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if tab.load(1) != stable {
					t.Error("a member that never left was not found")
					return
				}
			}
		})
	}
	for uid := 2; uid <= n; uid++ {
		tab.add(ms[uid])
		if uid > 2 {
			tab.remove(ms[uid-1], uint64(uid))
		}
	}
	close(done)
	wg.Wait()
	if got := len(*tab.dir.Load()); got > 2 {
		t.Errorf("%d pages left with 2 members online, want at most 2", got)
	}
}

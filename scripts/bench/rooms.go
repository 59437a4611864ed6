package main

import (
	"context"
	"fmt"
	"strconv"
)

// The rooms cases (SPEC.md section 8), against fastws alone: the
// baselines have no rooms. Receivers join their room with "/join rK" as
// soon as they are welcomed; senders say "#rK text" in rooms they have
// joined; markers go to the lobby ("#lobby MK|k"), which everyone is in.
const (
	lobbyRoom  = "lobby"
	roomJoined = "* you are now in #" // the answer to /join
	refusal    = "! "                 // an error line, e.g. "! too many rooms (maxRoomsPerMember 16)"
)

// roomName is the name of the bench's room number k.
func roomName(k int) string { return "r" + strconv.Itoa(k) }

// roomPlan is how a rooms case places its connections: receiver i is in
// room i/size; sender j is in the rooms senders[j] (names).
type roomPlan struct {
	size    int
	senders [][]string
}

// spreadRooms deals rooms 0 to n-1 out to senders in runs of perSender
// (the last may hold fewer): rooms k*perSender to (k+1)*perSender-1 are
// the sender k's.
func spreadRooms(n, perSender int) [][]string {
	var out [][]string
	for k := 0; k < n; k += perSender {
		var names []string
		for i := k; i < min(k+perSender, n); i++ {
			names = append(names, roomName(i))
		}
		out = append(out, names)
	}
	return out
}

// sayPrefixes returns the line prefixes ("#rK ") that say something in
// each of rooms.
func sayPrefixes(rooms [][]string) [][]string {
	out := make([][]string, len(rooms))
	for j, names := range rooms {
		for _, name := range names {
			out[j] = append(out[j], "#"+name+" ")
		}
	}
	return out
}

// appendMessage appends a fan-out message of phase ph ("FO|ph|seq|unixnano").
func appendMessage(b []byte, ph int, seq, unixNano int64) []byte {
	b = append(b, tagMessage...)
	b = strconv.AppendInt(b, int64(ph), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '|')
	return strconv.AppendInt(b, unixNano, 10)
}

// join has each sender join its rooms, and waits until the daemon has
// answered every join of senders and of the n receivers of gs (which
// sent theirs once welcomed).
func (b *bench) join(ctx context.Context, senders []*probe, rooms [][]string, gs groups, n int) error {
	for j, p := range senders {
		for _, name := range rooms[j] {
			if err := p.cl.send([]byte("/join " + name)); err != nil {
				return fmt.Errorf("sender %d: /join %s: %w", j, name, err)
			}
		}
	}
	var why error
	ok := waitFor(ctx, b.opt.setupTimeout, func() bool {
		for j, p := range senders {
			if v, ok := p.refused.Load().(string); ok {
				why = fmt.Errorf("sender %d refused: %q", j, v)
				return true
			}
		}
		if pr := gs.progress(); pr.Errors > 0 {
			why = fmt.Errorf("%d receiver errors, last: %s", pr.Errors, pr.LastError)
			return true
		}
		for j, p := range senders {
			if p.joined.Load() < int64(len(rooms[j])) {
				return false
			}
		}
		return gs.progress().Joined >= int64(n)
	})
	if why != nil {
		return why
	}
	if !ok {
		return fmt.Errorf("%d of %d receivers in their room after %s", gs.progress().Joined, n, b.opt.setupTimeout)
	}
	return nil
}

// rooms runs a rooms case against fastws. With c.lobby: one sender in
// the first of c.n/c.room rooms of c.room receivers (the others idle),
// both phases, as fanout does, to compare with c.lobby. Without: c.n/c.room
// rooms, every one busy, their senders each in opt.roomsPerSender rooms,
// saturation only.
func (b *bench) rooms(ctx context.Context, s *server, c caseDef, r *Run) {
	nrooms := (c.n + c.room - 1) / c.room
	plan := &roomPlan{size: c.room}
	receivers, phases := c.n, 1
	if c.lobby != "" {
		plan.senders = [][]string{{roomName(0)}}
		receivers, phases = c.room, 2
	} else {
		plan.senders = spreadRooms(nrooms, b.opt.roomsPerSender)
	}
	r.set("receivers", float64(c.n))
	r.set("rooms", float64(nrooms))
	r.set("room_receivers", float64(c.room))
	r.set("senders", float64(len(plan.senders)))
	if c.lobby != "" {
		r.set("vs_lobby", 1)
	}
	senders, gs, err := b.setup(ctx, s, c.ws, c.n, r, plan)
	if err != nil {
		r.failf("set-up: %v", err)
		return
	}
	b.progressf("  %s: %d receivers in %d rooms of %d, %d senders", s.kind, c.n, nrooms, c.room, len(senders))
	b.measure(ctx, s, gs, traffic{senders: senders, rooms: sayPrefixes(plan.senders), per: c.room, receivers: receivers}, phases, r)
}

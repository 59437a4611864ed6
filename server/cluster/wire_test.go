package cluster

import (
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
)

// FuzzDecode feeds the decoders arbitrary payloads: they must return an
// error or a value, never panic or allocate past the payload.
func FuzzDecode(f *testing.F) {
	f.Add(encodeEvent(&chat.Event{Kind: chat.KindMessage, UID: 7, Nick: "al", Text: "hi", Time: time.Unix(1, 0)}))
	f.Add(encodeEvent(&chat.Event{Kind: chat.KindMessage, UID: 7, To: 9, Private: true, Text: "psst"}))
	f.Add(encodeDump("n1", "id", true, []dumpMember{{uid: 3, nick: "x", nickKey: "x", protocol: "telnet", rooms: []roomRef{{"lobby", "lobby"}, {"g", "G"}}}}))
	f.Add(appendString(appendString(appendUint([]byte{msgEntered}, 3), "g"), "G"))
	f.Add([]byte{msgDump, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(encodeDump("n1", "id", true, []dumpMember{{uid: 4, protocol: "websocket", user: "alice"}}))
	f.Add(encodeEvent(&chat.Event{Kind: chat.KindMessage, Nick: chat.ServerNick, Text: "to all"}))
	f.Add(encodeUser(5, "alice"))
	f.Add(encodeJoined(5, "telnet", "main", 1234567))
	f.Add(encodeUser(5, "bad\x1b"))
	f.Add(encodeForward(chat.Forwarded{Op: chat.ForwardJoin, Target: chat.Target{User: "bob"}, Arg: "#games"}))
	f.Add(encodeForward(chat.Forwarded{Op: chat.ForwardDisconnect, Target: chat.Target{UID: 9}, Arg: "bye"}))
	f.Add(encodeForward(chat.Forwarded{Op: chat.ForwardSend, Target: chat.Target{UID: 9, User: "x"}, Arg: "two targets"}))
	hub := chat.NewHub(chat.Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		r := &reader{b: data[1:]}
		switch data[0] {
		case msgEvent:
			if w, err := decodeEvent(r); err == nil {
				if w.ev.UID == 0 && (w.ev.Nick != chat.ServerNick || w.ev.Private || w.ev.Kind != chat.KindMessage) {
					t.Fatal("event without a sender accepted")
				}
				// What decodes encodes back to the same fields.
				if w.roomKey == "" {
					back, err := decodeEvent(&reader{b: encodeEvent(w.ev)[1:]})
					if err != nil || back.ev.Text != w.ev.Text || back.ev.UID != w.ev.UID {
						t.Fatalf("round trip: %v", err)
					}
				}
			}
		case msgDump:
			_ = r.string()
			_, _, ms, err := decodeDump(r)
			if err == nil && len(ms) > len(data) {
				t.Fatalf("%d members from %d bytes", len(ms), len(data))
			}
			for _, m := range ms {
				if m.user != "" && !chat.ValidUser(m.user) || !validInstance(m.instance) {
					t.Fatalf("dump member with user %q accepted", m.user)
				}
			}
		case msgUser:
			if uid, user, err := decodeUser(r); err == nil && (uid == 0 || !chat.ValidUser(user)) {
				t.Fatalf("user message %d %q accepted", uid, user)
			}
		case msgForward:
			f, err := decodeForward(r)
			if err != nil {
				return
			}
			if (f.Target.UID != 0) == (f.Target.User != "") || f.Op < chat.ForwardSend || f.Op > chat.ForwardDisconnect {
				t.Fatalf("forward %+v accepted", f)
			}
			if back, err := decodeForward(&reader{b: encodeForward(f)[1:]}); err != nil || back != f {
				t.Fatalf("forward round trip: %+v %v", back, err)
			}
			// The Hub checks what the decoder lets through, as API
			// input; on a Hub without members it is for nobody.
			if n := hub.RunForwarded(f); n > 0 {
				t.Fatalf("forward %+v ran on %d members of an empty hub", f, n)
			}
		default:
			r.uint()
			r.string()
			r.string()
		}
	})
}

func TestRoomToken(t *testing.T) {
	for key, want := range map[string]string{"games": "games", "a.b": "~612e62", "x2e": "x2e", "é": "~c3a9", "a-b_c": "a-b_c"} {
		if got := roomToken(key); got != want {
			t.Errorf("roomToken(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	got := Redact("nats://u:secret@h1:4222, tls://tok@h2:4222,nats://h3")
	if want := "nats://u:xxxxx@h1:4222,tls://xxxxx@h2:4222,nats://h3"; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
}

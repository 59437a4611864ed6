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
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		r := &reader{b: data[1:]}
		switch data[0] {
		case msgEvent:
			if w, err := decodeEvent(r); err == nil {
				if w.ev.UID == 0 {
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
			if _, _, ms, err := decodeDump(r); err == nil && len(ms) > len(data) {
				t.Fatalf("%d members from %d bytes", len(ms), len(data))
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

package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fastws/fastws/chat"
)

// FuzzDecode: no body, however broken or cut short, panics the decoder,
// and every refusal is a 400 or a 413 with a message.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"text": "hi", "room": "games"}`,
		`{"text": "hi", "uid": 7}`,
		`{"text": "hi", "user": "u123"}`,
		`{"room": "games", "uid": 7, "reason": "x"}`,
		`{"text": "a"} {"text": "b"}`,
		`{"text": 5}`, `{"uid": -1}`, `{"uid": 1e99}`, `[]`, `null`, ``, `{"text": "\ud800"}`,
	}
	for _, s := range seeds {
		for i := 0; i <= len(s); i++ { // cut at every byte, as a partial body
			f.Add([]byte(s[:i]))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []any{new(sendRequest), new(roomRequest), new(disconnectRequest)} {
			e := decodeBody(bytes.NewReader(b), v)
			if e != nil && (e.code != http.StatusBadRequest && e.code != http.StatusRequestEntityTooLarge || e.msg == "") {
				t.Fatalf("%q: got %d %q", b, e.code, e.msg)
			}
		}
		// And through the handler, with the key, on an empty room.
		s := &Server{hub: chat.NewHub(chat.Options{}), maxText: func() int { return 64 }, requests: map[RequestKey]uint64{}}
		s.SetKey("0123456789abcdef")
		for _, path := range []string{"/api/v1/send", "/api/v1/join", "/api/v1/leave", "/api/v1/disconnect"} {
			req := httptest.NewRequest("POST", path, bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer 0123456789abcdef")
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, req)
			if w.Code != 200 && w.Code != 400 {
				t.Fatalf("POST %s %q: got %d", path, b, w.Code)
			}
			if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("POST %s %q: content type %q", path, b, w.Header().Get("Content-Type"))
			}
		}
	})
}

func TestUnknownFieldNamed(t *testing.T) {
	for body, field := range map[string]string{
		`{"text": "a", "colour": 1}`:   "colour",
		`{"text": "a", "to": 7}`:       "to",
		`{"text": "a", "uid": "7"}`:    "uid",
		`{"text": ["a"]}`:              "text",
		`{"text": "a", "room": false}`: "room",
	} {
		e := decodeBody(strings.NewReader(body), new(sendRequest))
		if e == nil || e.code != 400 || e.field != field {
			t.Errorf("%s: got %+v, want 400 naming %q", body, e, field)
		}
	}
	if e := decodeBody(strings.NewReader(`{"text": "a", "uid": 7}`), new(sendRequest)); e != nil {
		t.Errorf("a good body: got %+v", e)
	}
}

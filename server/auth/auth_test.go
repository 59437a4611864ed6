package auth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	v := Verifier(secret)
	exp := time.Now().Add(time.Hour).Unix()
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		p := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u1","exp":9999999999}`))
		return h + "." + p + "."
	}()
	cases := []struct {
		name, token string
		want        error // nil: accepted
	}{
		{"good", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u123", "name": "alice", "rooms": []string{"games"}, "exp": exp}), nil},
		{"within leeway", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(-10 * time.Second).Unix()}), nil},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(-time.Minute).Unix()}), ErrExpired},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another secret of 32 bytes......"), jwt.MapClaims{"sub": "u1", "exp": exp}), ErrSignature},
		{"alg none", none, ErrAlgorithm},
		{"HS512", sign(t, jwt.SigningMethodHS512, secret, jwt.MapClaims{"sub": "u1", "exp": exp}), ErrAlgorithm},
		{"missing exp", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1"}), ErrMissingExp},
		{"no sub", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": exp}), ErrBadSubject},
		{"sub too long", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": strings.Repeat("u", 65), "exp": exp}), ErrBadSubject},
		{"sub with an escape", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u\x1b[2J", "exp": exp}), ErrBadSubject},
		{"sub with a newline", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1\n* authenticated as admin", "exp": exp}), ErrBadSubject},
		{"sub with a bidi override", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u\u202e1", "exp": exp}), ErrBadSubject},
		{"sub of spaces", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": " ", "exp": exp}), ErrBadSubject},
		{"sub of 64 bytes", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": strings.Repeat("é", 32), "exp": exp}), nil},
		{"bad room name", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "rooms": []string{"games", "bad room!"}, "exp": exp}), ErrBadRoom},
		{"empty room name", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "rooms": []string{""}, "exp": exp}), ErrBadRoom},
		{"rooms not a list", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "rooms": 5, "exp": exp}), ErrMalformed},
		{"too many rooms", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "rooms": make([]string, MaxRooms+1), "exp": exp}), ErrTooManyRooms},
		{"not valid yet", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "nbf": time.Now().Add(time.Hour).Unix(), "exp": exp}), ErrNotYetValid},
		{"exp not a number", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "exp": "tomorrow"}), ErrMalformed},
		{"RS256 header with the secret", func() string {
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
			return h + "." + strings.Split(sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "exp": exp}), ".")[1] + ".c2ln"
		}(), ErrAlgorithm},
		{"garbage", "not.a.token", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"huge", strings.Repeat("a", MaxToken+1), ErrTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := v(c.token)
			if err != c.want {
				t.Fatalf("got error %v, want %v", err, c.want)
			}
			if c.want == nil && id.User == "" {
				t.Fatalf("got no user")
			}
			if err != nil && strings.Contains(err.Error(), string(secret)) {
				t.Fatalf("error %q names the secret", err)
			}
		})
	}
}

func TestSignVerifies(t *testing.T) {
	now := time.Unix(time.Now().Unix(), 0) // exp is in whole seconds
	tok, err := Sign(secret, "u123", "alice", []string{"games"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Verifier(secret)(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "u123" || id.Name != "alice" || len(id.Rooms) != 1 || id.Rooms[0] != "games" {
		t.Fatalf("got %+v", id)
	}
	if want := now.Add(time.Hour + Leeway); !id.Expires.Equal(want) {
		t.Errorf("Expires %v, want exp plus the leeway, %v", id.Expires, want)
	}
	if _, err := Sign(nil, "u", "", nil, time.Hour, time.Now()); err == nil {
		t.Fatal("signed with no secret")
	}
	for _, user := range []string{"", "u\x1b[2J", " u", strings.Repeat("u", MaxUser+1)} {
		if _, err := Sign(secret, user, "", nil, time.Hour, time.Now()); err == nil {
			t.Errorf("signed a token for user %q", user)
		}
	}
	if _, err := Sign(secret, "u", "", []string{"bad room!"}, time.Hour, time.Now()); err == nil {
		t.Error("signed a token with a bad room name")
	}
	if _, err := Verifier(nil)(tok); err != ErrNoSecret {
		t.Fatalf("got %v, want %v", err, ErrNoSecret)
	}
}

// FuzzVerify: no token, however broken, panics the verifier or is
// accepted without the secret.
func FuzzVerify(f *testing.F) {
	good, _ := Sign(secret, "u1", "a", []string{"r"}, time.Hour, time.Now())
	for i := 0; i <= len(good); i += 7 {
		f.Add(good[:i])
	}
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.")
	f.Add("..")
	v := Verifier(secret)
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := v(tok)
		if err == nil && tok != good {
			t.Fatalf("accepted %q as %+v", tok, id)
		}
	})
}

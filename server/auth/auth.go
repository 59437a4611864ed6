// Package auth verifies and signs user tokens: HS256 JWTs that an
// application signs with the daemon's tokenSecret, naming its user (sub),
// the nick they want (name) and the rooms they join (rooms).
//
//	{"alg": "HS256", "typ": "JWT"}
//	{"sub": "u123", "name": "alice", "rooms": ["games"], "exp": 1767225600}
//
// Only HS256 is accepted (not "none", not HS512, not RS256 with the secret
// as a public key); exp is required; 30 seconds of clock skew are allowed.
package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/golang-jwt/jwt/v5"
)

// Leeway is the clock skew allowed on exp (and nbf, iat).
const Leeway = 30 * time.Second

// MaxUser is the longest user id (sub), in bytes.
const MaxUser = chat.MaxUser

// MaxToken is the longest token accepted, in bytes: a token is a line, and
// decoding a huge one is work for nothing.
const MaxToken = 4096

// MaxRooms is the most rooms a token may name.
const MaxRooms = 16

// Claims is the payload of a user token.
type Claims struct {
	Name  string   `json:"name,omitempty"`
	Rooms []string `json:"rooms,omitempty"`
	jwt.RegisteredClaims
}

// Error is a refused token; its text is the short reason a member reads
// after "! bad token: " and the label of the auth failure metric.
type Error string

func (e Error) Error() string { return string(e) }

// Reasons a token is refused. They never contain the secret.
const (
	ErrExpired      = Error("expired")
	ErrNotYetValid  = Error("not valid yet")
	ErrSignature    = Error("bad signature")
	ErrAlgorithm    = Error("bad algorithm")
	ErrMissingExp   = Error("missing exp")
	ErrMalformed    = Error("malformed")
	ErrBadSubject   = Error("bad sub")
	ErrBadClaims    = Error("bad claims")
	ErrTooLong      = Error("too long")
	ErrNoSecret     = Error("tokens are off")
	ErrTooManyRooms = Error("too many rooms")
	ErrBadRoom      = Error("bad room")
)

// Reasons lists every refusal reason, for pre-declaring metric labels.
func Reasons() []string {
	es := []Error{ErrExpired, ErrNotYetValid, ErrSignature, ErrAlgorithm, ErrMissingExp, ErrMalformed,
		ErrBadSubject, ErrBadClaims, ErrTooLong, ErrNoSecret, ErrTooManyRooms, ErrBadRoom}
	rs := make([]string, len(es))
	for i, e := range es {
		rs[i] = string(e)
	}
	return rs
}

// Verifier returns a chat.Verifier for tokens signed with secret (none
// accepted if secret is empty). It is safe for concurrent use.
func Verifier(secret []byte) chat.Verifier {
	secret = append([]byte(nil), secret...)
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
	)
	key := func(*jwt.Token) (any, error) { return secret, nil }
	return func(token string) (chat.Identity, error) {
		if len(secret) == 0 {
			return chat.Identity{}, ErrNoSecret
		}
		if len(token) > MaxToken {
			return chat.Identity{}, ErrTooLong
		}
		var c Claims
		if _, err := parser.ParseWithClaims(token, &c, key); err != nil {
			return chat.Identity{}, reason(err)
		}
		switch {
		case !chat.ValidUser(c.Subject):
			return chat.Identity{}, ErrBadSubject
		case len(c.Rooms) > MaxRooms:
			return chat.Identity{}, ErrTooManyRooms
		}
		// A room that is not a room name would be dropped without a word
		// on auth: refuse the token, so the application learns of it.
		for _, r := range c.Rooms {
			if !chat.ValidRoom(r) {
				return chat.Identity{}, ErrBadRoom
			}
		}
		// The token stops being good at exp plus the leeway: the member is
		// closed then (chat.Expirer), as the token would be refused then.
		return chat.Identity{User: c.Subject, Name: c.Name, Rooms: c.Rooms, Expires: c.ExpiresAt.Add(Leeway)}, nil
	}
}

// reason maps a golang-jwt error to its short reason. The order matters:
// an error may wrap several (a bad signature on an expired token says
// "bad signature": nothing in it is to be believed).
func reason(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// Also what WithValidMethods reports for a refused alg: tell
		// them apart by the message golang-jwt gives it.
		if errors.Is(err, jwt.ErrTokenUnverifiable) || isAlgError(err) {
			return ErrAlgorithm
		}
		return ErrSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrMissingExp
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return ErrBadClaims
	}
	return ErrMalformed
}

// Sign returns a token for user (with name and rooms, both optional)
// valid for ttl, signed with secret: what `fastws token` prints.
func Sign(secret []byte, user, name string, rooms []string, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("no tokenSecret: set [api] tokenSecret or FASTWS_TOKEN_SECRET")
	}
	if !chat.ValidUser(user) {
		return "", errors.New("user must be 1-64 bytes of text, without control characters or spaces at its ends")
	}
	for _, r := range rooms {
		if !chat.ValidRoom(r) {
			return "", fmt.Errorf("bad room name %q", r)
		}
	}
	if ttl <= 0 {
		return "", errors.New("ttl must be positive")
	}
	c := Claims{Name: name, Rooms: rooms, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// isAlgError reports whether err is golang-jwt's refusal of an alg not in
// WithValidMethods, which it wraps as ErrTokenSignatureInvalid.
func isAlgError(err error) bool { return strings.Contains(err.Error(), "signing method") }

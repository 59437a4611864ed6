// Package api is the HTTP API through which applications (a PHP or Node
// backend, a cron job) reach the room: send to everyone, a room, a uid or
// a user; join and leave rooms for them; disconnect them; list who is
// online. It is net/http on a listener of its own, never the gnet path,
// and reaches sessions only through the chat.Hub's methods (SendServer,
// JoinFor, LeaveFor, Disconnect, Online, RoomList, MembersOf), as the
// room's own commands do: an API send costs one publish, one append per
// reactor, like a chat line.
//
// Every request carries "Authorization: Bearer KEY"; answers are JSON,
// errors {"error": "...", "field": "..."}.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastws/fastws/chat"
)

// MaxBody is the largest request body; a larger one gets 413.
const MaxBody = 1 << 20

// Timeouts of the HTTP server: an application's request is small and
// quick; a client that trickles bytes is cut off.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
)

// Endpoints, as the metric's endpoint label names them.
var Endpoints = []string{"send", "join", "leave", "disconnect", "online", "rooms", "members", "other"}

// Options configures a [Server].
type Options struct {
	Hub *chat.Hub
	Key string // the bearer key; see SetKey
	// MaxText returns the longest text /send accepts, in bytes: the
	// smallest maxPackageSize of the instances, so that every member
	// could have sent it. nil = 64K.
	MaxText func() int
	// MaxConns is the most connections served at once ([api]
	// maxConnections); 0 = DefaultMaxConns.
	MaxConns int
	Log      *slog.Logger
}

// Server is the running HTTP API. Its methods are safe for concurrent
// use.
type Server struct {
	hub     *chat.Hub
	maxText func() int
	key     atomic.Pointer[[sha256.Size]byte] // the key's hash: see authorized
	ln      net.Listener
	http    *http.Server
	done    chan struct{}

	mu       sync.Mutex
	requests map[RequestKey]uint64 // guarded by mu
}

// RequestKey labels a count of requests.
type RequestKey struct {
	Endpoint string
	Code     int
}

// Listen binds addr and serves the API on it until Close. It returns
// once the listener is bound, or the error (naming addr) if it cannot be.
func Listen(addr string, o Options) (*Server, error) {
	bound, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err // net's error names addr: "listen tcp ...: bind: address already in use"
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	ln := newLimitListener(bound, o.MaxConns)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{hub: o.Hub, maxText: o.MaxText, ln: ln, done: make(chan struct{}), requests: map[RequestKey]uint64{}}
	if s.maxText == nil {
		s.maxText = func() int { return 64 << 10 }
	}
	s.SetKey(o.Key)
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.done)
		_ = s.http.Serve(ln) // ErrServerClosed once Close is called
	}()
	return s, nil
}

// Addr returns the bound address (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: it stops accepting, lets requests under way
// finish until ctx ends, then closes what is left.
func (s *Server) Close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	<-s.done
	return err
}

// SetKey replaces the bearer key (on reload).
func (s *Server) SetKey(key string) {
	h := sha256.Sum256([]byte(key))
	s.key.Store(&h)
}

// Requests returns the requests served so far by endpoint and status
// code.
func (s *Server) Requests() map[RequestKey]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[RequestKey]uint64, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// Handler returns the API's handler: routing, the key check and the
// request count around each endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/send", only("POST", s.send))
	mux.HandleFunc("/api/v1/join", only("POST", s.join))
	mux.HandleFunc("/api/v1/leave", only("POST", s.leave))
	mux.HandleFunc("/api/v1/disconnect", only("POST", s.disconnect))
	mux.HandleFunc("/api/v1/online", only("GET", s.online))
	mux.HandleFunc("/api/v1/rooms", only("GET", s.rooms))
	mux.HandleFunc("/api/v1/members", only("GET", s.members))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path, "")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		if !s.authorized(r) {
			cw.Header().Set("WWW-Authenticate", `Bearer realm="fastws"`)
			// A client without the key keeps no connection slot (see
			// limitListener) between its requests.
			cw.Header().Set("Connection", "close")
			writeError(cw, http.StatusUnauthorized, "missing or wrong API key (Authorization: Bearer KEY)", "")
		} else {
			mux.ServeHTTP(cw, r)
		}
		s.count(endpoint(r.URL.Path), cw.code)
	})
}

// only restricts h to method (GET also allows HEAD); others get a JSON
// 405, as every answer of the API is JSON.
func only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == "GET" && r.Method == "HEAD") {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed: use "+method, "")
			return
		}
		h(w, r)
	}
}

// authorized reports whether r carries the key. Hashes of equal length
// are compared in constant time, so that neither the key's bytes nor its
// length leak through timing.
func (s *Server) authorized(r *http.Request) bool {
	// The scheme is case-insensitive (RFC 9110 11.1): "bearer KEY" too.
	scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if given = strings.TrimSpace(given); !ok || !strings.EqualFold(scheme, "Bearer") || given == "" {
		return false // an empty key is never a key, even if one was set empty
	}
	h := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(h[:], s.key.Load()[:]) == 1
}

func (s *Server) count(ep string, code int) {
	s.mu.Lock()
	s.requests[RequestKey{ep, code}]++
	s.mu.Unlock()
}

// endpoint returns the metric label of path: one of Endpoints.
func endpoint(path string) string {
	if ep, ok := strings.CutPrefix(path, "/api/v1/"); ok && slices.Contains(Endpoints, ep) {
		return ep
	}
	return "other"
}

// codeWriter remembers the status code written.
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, code int, msg, field string) {
	writeJSON(w, code, apiError{Error: msg, Field: field})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	b, _ := json.Marshal(v)
	_, _ = w.Write(append(b, '\n'))
}

// requestError is a refused request: its status, message and field.
type requestError struct {
	code  int
	msg   string
	field string
}

func (e *requestError) Error() string { return e.msg }

func badField(field, msg string) *requestError {
	return &requestError{code: http.StatusBadRequest, msg: msg, field: field}
}

// decode reads r's body, at most MaxBody bytes, as one JSON object into
// v, refusing unknown fields and anything after the object.
func decode(r *http.Request, w http.ResponseWriter, v any) *requestError {
	body := http.MaxBytesReader(w, r.Body, MaxBody)
	return decodeBody(body, v)
}

// decodeBody is decode's work on a body, for the fuzz target.
func decodeBody(body io.Reader, v any) *requestError {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		_, err = dec.Token()
		var mbe *http.MaxBytesError
		switch {
		case err == io.EOF:
			return nil
		case !errors.As(err, &mbe):
			return badField("", "bad JSON: one object expected, more follows")
		}
	}
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return &requestError{code: http.StatusRequestEntityTooLarge, msg: "request body over " + strconv.Itoa(MaxBody) + " bytes"}
	case errors.As(err, &ute):
		return badField(ute.Field, "bad JSON: "+ute.Field+" must be "+jsonType(ute.Type.String()))
	case errors.As(err, &se):
		return badField("", "bad JSON: "+se.Error())
	case err == io.EOF:
		return badField("", "bad JSON: empty body, a JSON object expected")
	case err == io.ErrUnexpectedEOF:
		return badField("", "bad JSON: unexpected end")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if u, err := strconv.Unquote(f); err == nil {
			f = u
		}
		return badField(f, "unknown field "+strconv.Quote(f))
	}
	return badField("", "bad JSON: "+err.Error())
}

// jsonType names a Go type of a request field as JSON has it.
func jsonType(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "string":
		return "a string"
	case "uint64":
		return "a positive integer"
	}
	return goType
}

func itoa(n int) string { return strconv.Itoa(n) }

package status

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"time"
)

// ErrNoDaemon is returned, wrapped with the socket's path, when the status
// socket is missing or nobody accepts on it.
var ErrNoDaemon = errors.New("no daemon is listening")

// RemoteError is an error the daemon reported, such as a reload refused
// because the new config is invalid. Its text is the daemon's, unchanged;
// it may span several lines.
type RemoteError struct {
	Message string
}

// Error returns the daemon's text unchanged.
func (e *RemoteError) Error() string { return e.Message }

// Query returns the daemon's snapshot. ctx bounds the whole exchange; the
// daemon gives up on a request after 5s.
func Query(ctx context.Context, path string) (Snapshot, error) {
	r, err := roundTrip(ctx, path, request{Cmd: cmdStatus})
	if err != nil {
		return Snapshot{}, err
	}
	if r.Status == nil {
		return Snapshot{}, fmt.Errorf("status socket %s: the reply has no status", path)
	}
	return *r.Status, nil
}

// QueryConnections returns every connection of the daemon, sorted by uid; an
// empty, non-nil slice when there is none. ctx bounds the whole exchange;
// the daemon gives up on a request after 5s.
func QueryConnections(ctx context.Context, path string) ([]Connection, error) {
	r, err := roundTrip(ctx, path, request{Cmd: cmdConnections})
	if err != nil {
		return nil, err
	}
	if r.Connections == nil {
		return nil, fmt.Errorf("status socket %s: the reply has no connections", path)
	}
	if r.Connections.Connections == nil {
		return []Connection{}, nil
	}
	cs := r.Connections.Connections
	slices.SortFunc(cs, func(a, b Connection) int { return cmp.Compare(a.UID, b.UID) })
	return cs, nil
}

// Reload asks the daemon to re-read its config file and waits until it has.
// A refusal is a *RemoteError whose text says why. Reloading may rebind
// instances, so give ctx more than a status query.
func Reload(ctx context.Context, path string) error {
	_, err := roundTrip(ctx, path, request{Cmd: cmdReload})
	return err
}

// Stop asks the daemon to begin a graceful stop that takes at most timeout,
// or its configured stopTimeout if timeout is 0. It returns once the daemon
// has begun, not when it has exited.
func Stop(ctx context.Context, path string, timeout time.Duration) error {
	if timeout < 0 {
		return fmt.Errorf("stop: negative timeout %s", timeout)
	}
	req := request{Cmd: cmdStop}
	if timeout > 0 {
		req.Timeout = timeout.String()
	}
	_, err := roundTrip(ctx, path, req)
	return err
}

// roundTrip sends req on a fresh connection to path and returns the reply,
// or a *RemoteError if the daemon refused it.
func roundTrip(ctx context.Context, path string, req request) (*response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("status socket %s: %w", path, ErrNoDaemon)
		}
		return nil, fmt.Errorf("status socket: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// Unblock the reads and writes below when ctx is cancelled.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if dl, ok := ctx.Deadline(); ok {
		req.Deadline = dl.UTC().Format(time.RFC3339Nano)
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	// A daemon that refuses a client may reply and hang up before reading
	// the request, so a failed write is reported only if no reply follows.
	_, werr := c.Write(append(line, '\n'))

	var r response
	if err := json.NewDecoder(io.LimitReader(c, maxResponse)).Decode(&r); err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("status socket %s: no reply: %w", path, ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded): // ctx's deadline, a hair before ctx sees it
			return nil, fmt.Errorf("status socket %s: no reply: %w", path, context.DeadlineExceeded)
		case werr != nil:
			return nil, fmt.Errorf("status socket %s: send request: %w", path, werr)
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			return nil, fmt.Errorf("status socket %s: the daemon hung up without replying", path)
		}
		return nil, fmt.Errorf("status socket %s: bad reply: %w", path, err)
	}
	if !r.OK {
		if r.Error == "" {
			r.Error = "the daemon refused the request without saying why"
		}
		return nil, &RemoteError{Message: r.Error}
	}
	return &r, nil
}

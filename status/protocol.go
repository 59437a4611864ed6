package status

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The commands of the status socket.
const (
	cmdStatus      = "status"
	cmdConnections = "connections"
	cmdReload      = "reload"
	cmdStop        = "stop"
)

// commands lists every command; commandList is shown to a client that
// sends an unknown one.
var (
	commands    = []string{cmdStatus, cmdConnections, cmdReload, cmdStop}
	commandList = strings.Join(commands, ", ")
)

const (
	// maxRequest is the longest request line, without its newline.
	maxRequest = 4 << 10
	// maxResponse caps what a client reads. A connection's row is about 260
	// bytes of JSON, up to about 600 with the longest nick; the cap leaves
	// room for a listing of 1,000,000 connections (ten instances at
	// maxConnections' default of 100,000) at that worst case. It guards
	// against a reply that never ends, not against a big one: the daemon
	// streams the listing, and the CLI holds it whole to sort and print.
	maxResponse = 1_000_000 * 600
)

// errLineTooLong is returned by readLine for a line over its limit.
var errLineTooLong = fmt.Errorf("request line too long (max %d bytes)", maxRequest)

// request is one request line.
type request struct {
	Cmd     string `json:"cmd"`
	Timeout string `json:"timeout,omitempty"` // stop only: a Go duration; omitted = the daemon's stopTimeout
	// Deadline is when the client gives up waiting, RFC 3339 with
	// fractional seconds. A daemon that gets to the request later (it was
	// stopped with SIGSTOP, say) drops it: nobody waits for the answer any
	// more, and a client that retries would otherwise see it done twice.
	Deadline string `json:"deadline,omitempty"`
}

// response is the one reply to a request. Exactly one of Status and
// Connections is set, on a successful status or connections command.
type response struct {
	OK          bool         `json:"ok"`
	Error       string       `json:"error,omitempty"`
	Status      *Snapshot    `json:"status,omitempty"`
	Connections *Connections `json:"connections,omitempty"`
}

// call is a decoded, validated request.
type call struct {
	cmd      string
	timeout  time.Duration // stop: 0 means the daemon's default
	deadline time.Time     // zero: none
}

// parseRequest decodes and validates one request line. Its errors are
// meant for the client.
func parseRequest(line []byte) (call, error) {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return call{}, fmt.Errorf(`bad request: %v; want one JSON object such as {"cmd":"status"}`, err)
	}
	c := call{cmd: req.Cmd}
	switch req.Cmd {
	case cmdStatus, cmdConnections, cmdReload:
		if req.Timeout != "" {
			return call{}, fmt.Errorf("bad request: timeout applies to stop only")
		}
	case cmdStop:
		if req.Timeout != "" {
			d, err := time.ParseDuration(req.Timeout)
			if err != nil || d < 0 {
				return call{}, fmt.Errorf("bad request: timeout %q is not a duration such as 10s", req.Timeout)
			}
			c.timeout = d
		}
	case "":
		return call{}, fmt.Errorf(`bad request: no "cmd" (commands: %s)`, commandList)
	default:
		return call{}, fmt.Errorf("unknown command %q (commands: %s)", req.Cmd, commandList)
	}
	if req.Deadline != "" {
		d, err := time.Parse(time.RFC3339Nano, req.Deadline)
		if err != nil {
			return call{}, fmt.Errorf("bad request: deadline %q is not an RFC 3339 time such as 2006-01-02T15:04:05.5Z", req.Deadline)
		}
		c.deadline = d
	}
	return c, nil
}

// readLine reads one line of at most max bytes, not counting its "\n",
// from r, without reading past max+1 bytes. A last line without "\n" is
// accepted; a client that sends nothing gets io.EOF.
func readLine(r io.Reader, max int) ([]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, int64(max)+1), max+1)
	line, err := br.ReadSlice('\n')
	switch {
	case err == nil:
		return line[:len(line)-1], nil
	case errors.Is(err, bufio.ErrBufferFull), len(line) > max:
		return nil, errLineTooLong
	case errors.Is(err, io.EOF) && len(line) > 0:
		return line, nil
	}
	return nil, err
}

package server

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"github.com/fastws/fastws/server/web"
	"github.com/gobwas/ws"
)

// wsMaxRequest bounds an HTTP request head: request line, headers and the
// blank line. A longer one gets 431.
const wsMaxRequest = 8 << 10

var crlfcrlf = []byte("\r\n\r\n")

// handshake reads the HTTP request once it is whole. An upgrade gets its
// 101, and the session joins the room; done reports that. Anything else
// gets its response as a *protocolError, which ends the connection.
func (d *wsDecoder) handshake(s *session, c input) (done bool, err error) {
	buf, _ := c.Peek(min(c.InboundBuffered(), wsMaxRequest+1))
	end := bytes.Index(buf[:min(len(buf), wsMaxRequest)], crlfcrlf)
	if end < 0 {
		if len(buf) > wsMaxRequest {
			return false, &protocolError{Kind: wsKindHandshake, Frame: httpResponse(431, "text/plain; charset=utf-8",
				[]byte("request header fields too large (max "+strconv.Itoa(wsMaxRequest)+" bytes)\n"), "")}
		}
		return false, nil
	}
	n := end + len(crlfcrlf)
	s.bytesIn += uint64(n)
	resp, proto, pe := d.codec.respond(buf[:n])
	if pe != nil {
		return false, pe
	}
	token := queryToken(buf[:n]) // before Discard: buf is gnet's buffer
	_, _ = c.Discard(n)
	// A peer that reset the connection after its request makes this
	// write fail, and gnet closes the connection inside it: OnClose has
	// run by the time it returns, and the session must not join.
	s.send(resp)
	if s.closed {
		return false, nil
	}
	d.upgraded, d.json = true, proto == wsProtocolJSON
	s.join()
	s.authOnUpgrade(token)
	return true, nil
}

// respond answers one HTTP request head: a 101 and the negotiated
// subprotocol for a valid upgrade, or else the response to write before
// closing as a *protocolError (Kind "" for a page or a plain 404/405).
//
// Upgrades are accepted on any path. A request without an Upgrade header
// is a page request: GET / gets the chat page (web.Index), other paths 404, other methods
// 405. The upgrade itself (method, version, Upgrade, Connection,
// Sec-WebSocket-Key and -Version, the subprotocol) is gobwas/ws's Upgrader,
// reading the buffered head from a bytes.Reader; it never negotiates an
// extension because it is given no Negotiate function.
func (wc *wsCodec) respond(req []byte) (resp []byte, proto string, pe *protocolError) {
	method, target, upgrade, ok := parseRequestHead(req)
	if !ok {
		return nil, "", &protocolError{Kind: wsKindHandshake, Frame: httpResponse(400, "text/plain; charset=utf-8", []byte("malformed request\n"), "")}
	}
	if !upgrade {
		return nil, "", &protocolError{Frame: page(method, target)}
	}
	var out bytes.Buffer
	u := ws.Upgrader{
		Protocol: func(p []byte) bool { return string(p) == wsProtocolJSON },
		OnHeader: func(k, v []byte) error {
			if len(wc.origins) > 0 && bytes.EqualFold(k, []byte("Origin")) && !wc.allowedOrigin(v) {
				return errOriginRefused // Upgrade returns it as it is
			}
			return nil
		},
	}
	hs, err := u.Upgrade(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(req), &out})
	switch {
	case err == errOriginRefused:
		return nil, "", &protocolError{Kind: wsKindOrigin, Frame: out.Bytes()}
	case err != nil && out.Len() == 0:
		return nil, "", &protocolError{Kind: wsKindHandshake, Frame: httpResponse(400, "text/plain; charset=utf-8", []byte(err.Error()+"\n"), "")}
	case err != nil:
		return nil, "", &protocolError{Kind: wsKindHandshake, Frame: out.Bytes()}
	}
	return out.Bytes(), hs.Protocol, nil
}

var errOriginRefused = ws.RejectConnectionError(
	ws.RejectionStatus(http.StatusForbidden),
	ws.RejectionHeader(ws.HandshakeHeaderString("Connection: close\r\n")),
	ws.RejectionReason("origin not allowed"),
)

// allowedOrigin reports whether an Origin header value is in
// allowedOrigins. A request without Origin is not from a browser and is
// not checked: the list guards browsers against other sites' pages, and
// any other client can send whatever Origin it likes.
func (wc *wsCodec) allowedOrigin(v []byte) bool {
	o := string(bytes.ToLower(bytes.TrimSpace(v)))
	for _, a := range wc.origins {
		if o == a {
			return true
		}
	}
	return false
}

// The answers to a request that is not an upgrade never change, so they
// are rendered once; a Frame is only ever written, never modified.
var (
	pageIndex      = httpResponse(200, "text/html; charset=utf-8", web.Index, "Cache-Control: no-cache\r\n")
	pageNotFound   = httpResponse(404, "text/plain; charset=utf-8", []byte("not found\n"), "")
	pageNotAllowed = httpResponse(405, "text/plain; charset=utf-8", []byte("method not allowed\n"), "Allow: GET\r\n")
)

// page answers a request that is not an upgrade.
func page(method, target []byte) []byte {
	path, _, _ := bytes.Cut(target, []byte{'?'})
	switch {
	case string(method) != http.MethodGet:
		return pageNotAllowed
	case string(path) != "/":
		return pageNotFound
	}
	return pageIndex
}

// parseRequestHead checks the shape of an HTTP/1.x request head ending in
// CRLF CRLF, and returns its method and target and whether it has an
// Upgrade header.
func parseRequestHead(req []byte) (method, target []byte, upgrade, ok bool) {
	line, rest, _ := bytes.Cut(req, []byte("\r\n"))
	parts := bytes.Split(line, []byte{' '})
	if len(parts) != 3 || len(parts[0]) == 0 || len(parts[1]) == 0 ||
		!(bytes.Equal(parts[2], []byte("HTTP/1.1")) || bytes.Equal(parts[2], []byte("HTTP/1.0"))) {
		return nil, nil, false, false
	}
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(h) == 0 {
			break
		}
		name, _, found := bytes.Cut(h, []byte{':'})
		if !found || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return nil, nil, false, false
		}
		upgrade = upgrade || bytes.EqualFold(name, []byte("Upgrade"))
	}
	return parts[0], parts[1], upgrade, true
}

// httpResponse renders a complete HTTP/1.1 response that closes the
// connection; extra is more header lines, each ending in CRLF.
func httpResponse(status int, contentType string, body []byte, extra string) []byte {
	b := make([]byte, 0, 160+len(extra)+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, contentType...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n"...)
	b = append(b, extra...)
	b = append(b, "\r\n"...)
	return append(b, body...)
}

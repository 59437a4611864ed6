// Package web holds the chat page that websocket instances serve on GET /.
//
// The page is one self-contained HTML file with inline CSS and JavaScript:
// no build step, no CDN, nothing fetched from anywhere but the daemon. It
// speaks the fastws.v1.json subprotocol to the instance that served it.
package web

import _ "embed" // for go:embed

// Index is the chat page, to be served as text/html; charset=utf-8. It must
// not be modified.
//
//go:embed index.html
var Index []byte

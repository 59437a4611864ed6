// Package status is fastws's status socket: the daemon side ([Listen],
// [Server]), the client side used by the CLI ([Query], [QueryConnections],
// [Reload], [Stop]), the snapshot types both exchange ([Snapshot],
// [Connection]) and their rendering as tables ([RenderStatus],
// [RenderConnections]) and JSON ([WriteJSON]), and the Prometheus /metrics
// and /healthz endpoint that exposes the same snapshot ([NewCollector],
// [ServeMetrics]).
//
// The daemon produces the snapshot, through a [Handler] or the function
// given to [NewCollector]; this package only serves and renders it. It
// imports nothing of fastws, so the server, chat and pidfile packages stay
// free to change.
//
// # The socket
//
// A unix stream socket, by default runDir/fastws.sock ([SocketPath]), mode
// 0600 inside a runDir of mode 0700, and further restricted to the daemon's
// user and root by the peer's credentials (see [Listen]). Each connection
// carries one request line and one reply line, newline-delimited JSON, then
// the daemon closes it:
//
//	request  = {"cmd":"status"} | {"cmd":"connections"} | {"cmd":"reload"}
//	         | {"cmd":"stop"} | {"cmd":"stop","timeout":"10s"}
//	           any of them may add "deadline":"2026-01-02T15:04:05.25Z"
//	reply    = {"ok":true,"status":SNAPSHOT}
//	         | {"ok":true,"connections":{"connections":[CONNECTION, ...]}}
//	         | {"ok":true}                    (reload, stop)
//	         | {"ok":false,"error":"TEXT"}     (TEXT may span lines)
//
// A request line is at most 4 KiB. The daemon serves 16 clients at a time
// (others wait), reads the request and lists connections within 5s, and
// gives a reload as long as it takes. stop's timeout is a Go duration;
// without it the daemon's stopTimeout applies. stop replies once the stop
// has begun; the daemon then closes the socket and removes it.
//
// deadline, RFC 3339, is when the client stops waiting (the Go client sends
// its context's deadline). A request the daemon reaches after its deadline
// (the daemon was stopped with SIGSTOP, or busy) is not carried out: the
// reply is {"ok":false,"error":"request expired ..."}, to nobody. So a
// reload or stop that the CLI gave up on does not happen later behind the
// operator's back.
//
// The connections reply is streamed, rows as each event loop yields them,
// and "ok" comes last: {"connections":{"connections":[...]},"ok":true}, or
// "ok":false with "error" if the listing failed part way (the rows before
// it are then incomplete). Rows come in no particular order.
//
// # The JSON schema
//
// "fastws status --json" prints a [Snapshot], "fastws connections --json" a
// [Connections]; the socket's replies embed the same objects. SCHEMA.md, next
// to this file, lists every field; a test keeps it, the examples below and
// the types in step. The schema is stable: fields are added, never renamed,
// retyped or removed, so readers must ignore fields they do not know. Field
// names are lowerCamelCase; times are RFC 3339 strings in UTC (fractional
// seconds may appear); durations are float seconds and named so
// (uptimeSeconds); sizes are integer bytes and named so (rssBytes); every
// array is present, [] when empty, and so is every object keyed by name
// (closedByReason, protocolErrors), {} when empty.
//
// An example of "fastws status --json":
//
//	{
//	  "daemon": {
//	    "pid": 1234,
//	    "version": "0.1.0",
//	    "goVersion": "go1.26.8",
//	    "config": "/srv/fastws/config.ini",
//	    "started": "2026-11-21T15:00:00Z",
//	    "uptimeSeconds": 3723.5,
//	    "rssBytes": 12897484,
//	    "heapBytes": 4299161,
//	    "goroutines": 23,
//	    "members": 3,
//	    "rooms": 1,
//	    "openFiles": 57,
//	    "maxOpenFiles": 20000,
//	    "startedBy": "systemd",
//	    "serviceUnit": "fastws.service"
//	  },
//	  "instances": [
//	    {
//	      "name": "FastWS-Telnet",
//	      "protocol": "telnet",
//	      "listen": "0.0.0.0:19910",
//	      "reactors": 4,
//	      "connections": 2,
//	      "connectionsTotal": 5,
//	      "messagesIn": 10,
//	      "messagesOut": 20,
//	      "writes": 14,
//	      "bytesIn": 1229,
//	      "bytesOut": 3482,
//	      "errors": 0,
//	      "listening": true,
//	      "broadcastDeliveries": 16,
//	      "privateMessages": 1,
//	      "slowConsumers": 1,
//	      "acceptStalls": 1,
//	      "closedByReason": {
//	        "client_closed": 0,
//	        "client_quit": 1,
//	        "error": 0,
//	        "flood": 0,
//	        "idle": 1,
//	        "ping_timeout": 0,
//	        "protocol_error": 0,
//	        "refused": 0,
//	        "shutdown": 0,
//	        "slow_consumer": 1
//	      },
//	      "protocolErrors": {
//	        "line_too_long": 0,
//	        "refused": 0
//	      },
//	      "error": ""
//	    },
//	    {
//	      "name": "FastWS-WebSocket",
//	      "protocol": "websocket",
//	      "listen": "0.0.0.0:19911",
//	      "reactors": 2,
//	      "connections": 1,
//	      "connectionsTotal": 1,
//	      "messagesIn": 3,
//	      "messagesOut": 12,
//	      "writes": 12,
//	      "bytesIn": 96,
//	      "bytesOut": 1860,
//	      "errors": 1,
//	      "listening": true,
//	      "broadcastDeliveries": 9,
//	      "privateMessages": 0,
//	      "slowConsumers": 0,
//	      "acceptStalls": 1,
//	      "closedByReason": {
//	        "client_closed": 0,
//	        "client_quit": 0,
//	        "error": 0,
//	        "flood": 0,
//	        "idle": 0,
//	        "ping_timeout": 0,
//	        "protocol_error": 0,
//	        "refused": 0,
//	        "shutdown": 0,
//	        "slow_consumer": 0
//	      },
//	      "protocolErrors": {
//	        "refused": 1,
//	        "ws_handshake": 0,
//	        "ws_origin": 0,
//	        "ws_protocol": 0,
//	        "ws_too_big": 0,
//	        "ws_unsupported": 0,
//	        "ws_utf8": 0
//	      },
//	      "error": "instance FastWS-WebSocket: listen 0.0.0.0:19912: bind: address already in use; it keeps serving 0.0.0.0:19911 with its previous settings"
//	    }
//	  ],
//	  "cluster": {
//	    "enabled": true,
//	    "node": "fra-1",
//	    "nats": "nats://10.0.0.5:4222",
//	    "connected": true,
//	    "rttSeconds": 0.00042,
//	    "error": "another node uses this node's name fra-1; give each node a unique name",
//	    "messagesSent": 18211,
//	    "messagesReceived": 40960,
//	    "malformed": 2,
//	    "nodes": [
//	      {
//	        "name": "fra-1",
//	        "members": 1500,
//	        "self": true
//	      },
//	      {
//	        "name": "fra-2",
//	        "members": 1733,
//	        "self": false
//	      }
//	    ]
//	  }
//	}
//
// An example of "fastws connections --json":
//
//	{
//	  "connections": [
//	    {
//	      "uid": 7,
//	      "nick": "alice",
//	      "user": "u123",
//	      "rooms": [
//	        "lobby",
//	        "games"
//	      ],
//	      "instance": "FastWS-Telnet",
//	      "reactor": 1,
//	      "remote": "203.0.113.5:51234",
//	      "since": "2026-11-21T15:58:51Z",
//	      "messagesIn": 4,
//	      "messagesOut": 9,
//	      "bytesQueued": 0
//	    },
//	    {
//	      "uid": 8,
//	      "nick": "",
//	      "user": "",
//	      "rooms": [
//	        "lobby"
//	      ],
//	      "instance": "FastWS-WebSocket",
//	      "reactor": 0,
//	      "remote": "[2001:db8::1]:40022",
//	      "since": "2026-11-21T16:01:30.25Z",
//	      "messagesIn": 0,
//	      "messagesOut": 2,
//	      "bytesQueued": 1536
//	    }
//	  ]
//	}
//
// # Goroutines
//
// [Listen] starts one accept goroutine, and each client gets a goroutine of
// its own that calls the [Handler]. [Server.Close] waits for all of them,
// bounded: see its documentation. The client functions run on the caller's
// goroutine and open one connection per call.
package status

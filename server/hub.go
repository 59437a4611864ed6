package server

import "github.com/fastws/fastws/chat"

// Hub returns the server's room, for a cluster node to deliver what other
// nodes send. It is safe for concurrent use.
func (s *Server) Hub() *chat.Hub { return s.hub }

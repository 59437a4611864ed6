package chat

import "testing"

func TestCloseReasonString(t *testing.T) {
	tests := []struct {
		r    CloseReason
		want string
	}{
		{ReasonClientClosed, "client_closed"},
		{ReasonClientQuit, "client_quit"},
		{ReasonIdle, "idle"},
		{ReasonSlowConsumer, "slow_consumer"},
		{ReasonProtocolError, "protocol_error"},
		{ReasonFlood, "flood"},
		{ReasonRefused, "refused"},
		{ReasonShutdown, "shutdown"},
		{ReasonError, "error"},
		{ReasonPingTimeout, "ping_timeout"},
		{numReasons, "unknown"},
		{CloseReason(255), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.r.String(); got != tt.want {
				t.Errorf("CloseReason(%d).String(): got %q, want %q", tt.r, got, tt.want)
			}
		})
	}

	rs := Reasons()
	if got, want := len(rs), int(numReasons); got != want {
		t.Fatalf("len(Reasons()): got %d, want %d", got, want)
	}
	for i, r := range rs {
		if r != CloseReason(i) {
			t.Errorf("Reasons()[%d]: got %v, want %v", i, r, CloseReason(i))
		}
	}
}

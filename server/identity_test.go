package server

import "testing"

func TestQueryToken(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"/?token=abc.def.ghi", "abc.def.ghi"},
		{"/chat?x=1&token=a%2Bb", "a+b"},
		{"/?token=a&token=b", "a"},
		{"/?token=", ""},
		{"/", ""},
		{"/token=abc", ""},
		{"/?token=%zz", ""}, // a bad escape: no token, not a crash
		{"/?tok=abc", ""},
	} {
		req := "GET " + tc.target + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		if got := queryToken([]byte(req)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.target, got, tc.want)
		}
	}
	if got := queryToken([]byte("garbage")); got != "" {
		t.Errorf("garbage: got %q", got)
	}
}

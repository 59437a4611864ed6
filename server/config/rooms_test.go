package config

import (
	"strings"
	"testing"
)

// TestRoomLimits: maxRooms and maxRoomsPerMember default to 10000 and 16,
// take 0 (unlimited) and whole numbers, are [fastws] only, and a bad
// value is reported with file, line, section and key.
func TestRoomLimits(t *testing.T) {
	c := mustParse(t, oneInstance)
	if c.MaxRooms != 10000 || c.MaxRoomsPerMember != 16 {
		t.Errorf("defaults: got maxRooms %d, maxRoomsPerMember %d, want 10000, 16", c.MaxRooms, c.MaxRoomsPerMember)
	}
	c = mustParse(t, "[fastws]\nmaxRooms = 0\nmaxRoomsPerMember = 3\n"+oneInstance)
	if c.MaxRooms != 0 || c.MaxRoomsPerMember != 3 {
		t.Errorf("set: got maxRooms %d, maxRoomsPerMember %d, want 0, 3", c.MaxRooms, c.MaxRoomsPerMember)
	}
	shipped, err := Load(shippedPath)
	if err != nil {
		t.Fatal(err)
	}
	if shipped.MaxRooms != 10000 || shipped.MaxRoomsPerMember != 16 {
		t.Errorf("shipped config.ini: got maxRooms %d, maxRoomsPerMember %d, want 10000, 16", shipped.MaxRooms, shipped.MaxRoomsPerMember)
	}
	for _, tt := range []struct{ text, want string }{
		{"[fastws]\nmaxRooms = -1\n", `config.ini:2: [fastws] maxRooms = "-1": must be a whole number >= 0`},
		{"[fastws]\nmaxRoomsPerMember = many\n", `config.ini:2: [fastws] maxRoomsPerMember = "many": must be a whole number >= 0`},
		{"[fastws]\n" + oneInstance + "maxRooms = 5\n", `[instance.a] maxRooms = "5": unknown key`},
	} {
		if got := parseErr(t, tt.text+oneInstance); !strings.Contains(got, tt.want) {
			t.Errorf("%q: got %q, want it to contain %q", tt.text, got, tt.want)
		}
	}
}

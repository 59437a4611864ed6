package config

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/ini.v1"
)

// scanSeeds are inputs where ini.v1's grammar has corners: values that run
// on over lines, "-" keys, quoted key names, [DEFAULT], byte-order marks,
// CRLF, refused lines among good ones. FuzzParse starts from them too.
var scanSeeds = []string{
	"",
	"[fastws\n",
	"[]\n",
	"key\n",
	"= v\n",
	"\"k = v\n",
	"\"\" = v\n",
	"\"a=b\" = `open\n",
	"k = \"\"\"open\n",
	"[instance.a]\nk = `open\nstill open\n",
	"[instance.a]\nk = `a\nb`\nport = 1\n",
	"[instance.a]\nk = \"\"\"a\n[instance.b]\nport = 2\n\"\"\" ; done\nport = x\n",
	"[instance.a]\nk = \"a\n\"\nk = `b\nc` # again\n-\t= x\n",
	"[instance.a]\n-\t= x\n- = y\n",
	"[instance.a]\n- = x\n\"#1\" = y\n\"#2\" = z\n- = w\n[instance.b]\n- = v\n[instance.a]\n- = u\n",
	"- = x\n[DEFAULT]\n- = y\nk = 1\n[DEFAULT]\nk = 2\n",
	"k = ; only a comment\nk = # again\nj = \"; quoted\"\ni = '';x\nh = x;y\n",
	"\ufeff[instance.a]\r\ninstanceName = A\r\nprotocol = telnet\r\nport = 1\r\n",
	"\ufeffk = `open\n",
	"\n\ufeff[instance.a]\n",
	"\xff\xfe[instance.a]\n",
	"\xfe\xff\n[x]\n",
	"[instance.a]\nport = 99999999999999999999999\nmaxSendBuffer = 9999999999G\n",
	"[DEFAULT]\n[instance]\n[instance.a.b]\nhost = ::ffff:1.2.3.4%eth0\n",
	"[a] ; c\n  [b]  # c\n\t[c]x]\n[d\nk=\n k2 =v \\\nnot continued\n",
	"[instance.a]\ninstanceName = A\nprotocol = telnet\nport = 1\n[instance.b]\ninstanceName = B\nprotocol = websocket\nhost = ::\nport = 1\n",
}

// agree checks that the statements scan read one by one add up to what
// ini.v1 reads in the whole file, refused lines blanked: the same sections
// in the same order, each with the same keys in the same order and the
// same values. Were they ever to differ, scan's line numbers would point
// at lines ini.v1 did not read that way.
func agree(data []byte) error {
	ix, blanked := scan("config.ini", data)
	f, err := ini.LoadSources(loadOptions, blanked)
	if err != nil {
		return fmt.Errorf("ini.v1 refuses what scan kept: %v", err)
	}
	var whole []string
	for _, s := range f.Sections() {
		whole = append(whole, "["+s.Name()+"]")
		for _, k := range s.Keys() {
			whole = append(whole, k.Name()+" = "+k.Value())
		}
	}
	// ini.v1 files keys before any header and under [DEFAULT] together;
	// a key set in both keeps the later value, under [DEFAULT].
	sections := []string{ini.DefaultSection}
	for _, s := range ix.sections[1:] {
		if s != ini.DefaultSection {
			sections = append(sections, s)
		}
	}
	var parts []string
	for _, s := range sections {
		parts = append(parts, "["+s+"]")
		names, from := ix.order[s], []string{s}
		if s == ini.DefaultSection {
			names, from = slices.Clone(ix.order[implicitSection]), []string{ini.DefaultSection, implicitSection}
			for _, k := range ix.order[ini.DefaultSection] {
				if !slices.Contains(names, k) {
					names = append(names, k)
				}
			}
		}
		for _, k := range names {
			for _, sec := range from {
				if p := ix.keys[sec][k]; p != nil {
					parts = append(parts, k+" = "+p.value)
					break
				}
			}
		}
	}
	if got, want := strings.Join(parts, "\n"), strings.Join(whole, "\n"); got != want {
		return fmt.Errorf("statements read one by one:\n%s\nwhole file:\n%s", got, want)
	}
	// Each refused line must be one ini.v1 refuses where it stands: with
	// the refused lines before it blanked and the rest of the file as
	// written (a value that runs on may close further down).
	lines := bytes.SplitAfter(data, []byte("\n"))
	kept := bytes.SplitAfter(blanked, []byte("\n"))
	for n := range ix.blank {
		text := slices.Concat(slices.Concat(kept[:n-1]...), slices.Concat(lines[n-1:]...))
		if _, err := ini.LoadSources(loadOptions, text); err == nil {
			return fmt.Errorf("line %d: scan refuses it, ini.v1 reads it", n)
		}
	}
	return nil
}

// TestScanAgrees checks that scan's statement-by-statement reading agrees
// with ini.v1's whole-file reading on the shipped file and on the corners
// of ini.v1's grammar.
func TestScanAgrees(t *testing.T) {
	shipped, err := os.ReadFile(shippedPath)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range append([]string{string(shipped)}, scanSeeds...) {
		if err := agree([]byte(s)); err != nil {
			t.Errorf("input %d %q:\n%v", i, s, err)
		}
	}
}

// TestScanLines checks the lines scan finds for keys, headers and refused
// lines that follow values running on over several lines.
func TestScanLines(t *testing.T) {
	text := "[instance.a]\n" + // 1
		"k = \"\"\"a\n" + // 2
		"[instance.b]\n" + // 3: inside the value
		"port = 2\n" + // 4: inside the value
		"\"\"\" ; done\n" + // 5
		"port = 1\n" + // 6
		"- = x\n" + // 7
		"bad line\n" + // 8
		"j = `b\n" + // 9
		"c`\n" + // 10
		"- = y\n" + // 11
		"[instance.b]\n" + // 12
		"port = `open\n" // 13
	ix, _ := scan("config.ini", []byte(text))
	for _, tt := range []struct {
		section, key string
		line         int
	}{
		{"instance.a", "k", 2},
		{"instance.a", "port", 6},
		{"instance.a", "#1", 7},
		{"instance.a", "j", 9},
		{"instance.a", "#2", 11},
	} {
		if got := ix.key(tt.section, tt.key).line; got != tt.line {
			t.Errorf("[%s] %s: got line %d, want %d", tt.section, tt.key, got, tt.line)
		}
	}
	if got := ix.headers["instance.b"]; !slices.Equal(got, []int{12}) {
		t.Errorf("[instance.b] headers: got lines %v, want [12]", got)
	}
	if got := ix.key("instance.a", "k").value; got != "a\n[instance.b]\nport = 2\n" {
		t.Errorf("k: got value %q", got)
	}
	var got []string
	for _, e := range ix.errs {
		got = append(got, e.Error())
	}
	want := []string{
		`config.ini:8: "bad line": not a key = value line; want key = value, [section] or a ; comment`,
		"config.ini:13: [instance.b] port = \"`open\": unclosed ` quote; close it or remove it",
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\ngot  %q\nwant %q", got, want)
	}
	if !ix.blank[8] || !ix.blank[13] || len(ix.blank) != 2 {
		t.Errorf("blanked lines: got %v, want 8 and 13", ix.blank)
	}
}

// TestScanManyRunOnValues checks that values running on over lines cost
// time in proportion to the file, not to its length times their number:
// 20000 of them, each read on over a window, would take minutes if each
// read on to the end of the file.
func TestScanManyRunOnValues(t *testing.T) {
	var b strings.Builder
	b.WriteString("[instance.a]\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "k%d = `a\nb`\n", i)
	}
	b.WriteString("port = `open\n")
	start := time.Now()
	ix, _ := scan("config.ini", []byte(b.String()))
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("scan took %v, want well under 20s", d)
	}
	if got, want := ix.key("instance.a", "k19999").line, 2+2*19999; got != want {
		t.Errorf("k19999: got line %d, want %d", got, want)
	}
	if len(ix.errs) != 1 || ix.errs[0].Line != 40002 {
		t.Errorf("got errors %v, want one at line 40002", ix.errs)
	}
}

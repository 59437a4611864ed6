package config

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
)

// ini.v1 keeps no line numbers, yet every error must name one. scan walks
// the raw bytes with ini.v1's own line grammar (as configured by loadOptions)
// and records where each section header and key sits. It also finds the
// lines ini.v1 would refuse, so they can be reported together, then blanked
// before ini.v1 parses the rest.

// implicitSection holds keys that come before any section header; ini.v1
// files them under its DEFAULT section.
const implicitSection = ""

// keyPos is where a key is set.
type keyPos struct {
	first       int  // the first line setting it
	line        int  // the last line setting it: the value ini.v1 keeps
	commentOnly bool // "key = ; note": the value is empty, the rest a comment
}

// index maps sections and keys to lines.
type index struct {
	headers  map[string][]int              // section -> header lines
	keys     map[string]map[string]*keyPos // section -> key -> position
	implicit []string                      // keys before any header, in order
	errs     Errors                        // malformed lines and duplicates
	blank    map[int]bool                  // lines ini.v1 would refuse
}

// headerLine returns the first header line of a section, or 0.
func (ix *index) headerLine(section string) int {
	if h := ix.headers[section]; len(h) > 0 {
		return h[0]
	}
	return 0
}

// key returns where a key is set, or a zero keyPos.
func (ix *index) key(section, key string) keyPos {
	if p := ix.keys[section][key]; p != nil {
		return *p
	}
	return keyPos{}
}

// bomLen returns the length of the byte-order mark ini.v1 strips from the
// start of a file (UTF-8, or the two UTF-16 marks), or 0.
func bomLen(data []byte) int {
	switch {
	case len(data) >= 2 && (data[0] == 0xfe && data[1] == 0xff || data[0] == 0xff && data[1] == 0xfe):
		return 2
	case len(data) >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf:
		return 3
	}
	return 0
}

// scan indexes data and returns it with the refused lines blanked.
func scan(file string, data []byte) (*index, []byte) {
	ix := &index{
		headers: map[string][]int{},
		keys:    map[string]map[string]*keyPos{},
		blank:   map[int]bool{},
	}
	bom := bomLen(data)
	lines := bytes.SplitAfter(data[bom:], []byte("\n"))
	section := implicitSection
	autoKey := 1 // ini.v1 names "-" keys #1, #2, ... per section
	bad := func(n int, line []byte, msg string) {
		ix.errs = append(ix.errs, &Error{File: file, Line: n, Value: string(bytes.TrimSpace(line)), Msg: msg, hasValue: true})
		ix.blank[n] = true
	}
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := bytes.TrimLeftFunc(lines[i], unicode.IsSpace)
		if len(line) == 0 || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := bytes.LastIndexByte(line, ']')
			if end < 0 {
				bad(n, line, "unclosed section header; want [fastws] or [instance.NAME]")
				continue
			}
			name := string(line[1:end])
			if name == "" {
				bad(n, line, "empty section name; want [fastws] or [instance.NAME]")
				continue
			}
			if prev := ix.headers[name]; len(prev) > 0 {
				ix.errs = append(ix.errs, &Error{File: file, Line: n, Section: name,
					Msg: "duplicate section (first on line " + strconv.Itoa(prev[0]) + "); write each section once"})
			}
			ix.headers[name] = append(ix.headers[name], n)
			section, autoKey = name, 1
			continue
		}
		name, off, msg := keyName(string(line))
		if msg != "" {
			bad(n, line, msg)
			continue
		}
		if name == "-" {
			name = "#" + strconv.Itoa(autoKey)
			autoKey++
		}
		value := bytes.TrimLeftFunc(line[off:], unicode.IsSpace)
		quote := ""
		switch {
		case len(value) > 3 && bytes.HasPrefix(value, []byte(`"""`)):
			quote = `"""`
		case len(value) > 0 && value[0] == '`':
			quote = "`"
		case len(value) > 0 && value[0] == '"':
			quote = `"`
		}
		if quote != "" && !bytes.Contains(value[len(quote):], []byte(quote)) {
			// The value runs on to the line holding the closing quote.
			j := i + 1
			for j < len(lines) && !bytes.Contains(lines[j], []byte(quote)) {
				j++
			}
			if j == len(lines) {
				ix.errs = append(ix.errs, &Error{File: file, Line: n, Section: section, Key: name,
					Value: string(bytes.TrimSpace(value)), hasValue: true,
					Msg: "unclosed " + quote + " quote; close it or remove it"})
				ix.blank[n] = true
				continue
			}
			i = j
		}
		keys := ix.keys[section]
		if keys == nil {
			keys = map[string]*keyPos{}
			ix.keys[section] = keys
		}
		pos := &keyPos{first: n, line: n, commentOnly: len(value) > 0 && (value[0] == ';' || value[0] == '#')}
		if prev := keys[name]; prev != nil {
			ix.errs = append(ix.errs, &Error{File: file, Line: n, Section: section, Key: name,
				Value: roughValue(value), hasValue: true,
				Msg: "duplicate key (first on line " + strconv.Itoa(prev.first) + "); set each key once per section"})
			prev.line, prev.commentOnly = pos.line, pos.commentOnly
			continue
		}
		keys[name] = pos
		if section == implicitSection {
			ix.implicit = append(ix.implicit, name)
		}
	}
	if len(ix.blank) == 0 {
		return ix, data
	}
	out := make([]byte, 0, len(data))
	out = append(out, data[:bom]...)
	for i, l := range lines {
		if ix.blank[i+1] {
			l = l[len(bytes.TrimRight(l, "\n")):]
		}
		out = append(out, l...)
	}
	return ix, out
}

// keyName splits a key line the way ini.v1's readKeyName does with "=" as
// the only delimiter: it returns the key name and the offset of the value,
// or a message saying why the line is not key = value.
func keyName(line string) (name string, off int, msg string) {
	const delim = "="
	quote := ""
	switch line[0] {
	case '"':
		quote = `"`
		if len(line) > 6 && line[:3] == `"""` {
			quote = `"""`
		}
	case '`':
		quote = "`"
	}
	if quote != "" {
		start := len(quote)
		pos := strings.Index(line[start:], quote)
		if pos < 0 {
			return "", 0, "unclosed quote in key name; want key = value"
		}
		pos += start
		i := strings.IndexAny(line[pos+start:], delim)
		if i < 0 {
			return "", 0, "not a key = value line; want key = value, [section] or a ; comment"
		}
		name = strings.TrimSpace(line[start:pos])
		if name == "" {
			return "", 0, "missing key name; want key = value"
		}
		return name, pos + i + start + 1, ""
	}
	end := strings.IndexAny(line, delim)
	switch {
	case end < 0:
		return "", 0, "not a key = value line; want key = value, [section] or a ; comment"
	case end == 0:
		return "", 0, "missing key name; want key = value"
	}
	return strings.TrimSpace(line[:end]), end + 1, ""
}

// roughValue is a value as ini.v1 would read it, near enough to quote in a
// message about a line whose value ini.v1 overwrites.
func roughValue(v []byte) string {
	s := strings.TrimSpace(string(v))
	for _, c := range []string{" #", " ;"} {
		if i := strings.Index(s, c); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
	}
	return s
}

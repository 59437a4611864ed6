package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/ini.v1"
)

// ini.v1 keeps no line numbers, yet every error must name one. scan hands
// ini.v1 the file one statement at a time (a line, or the lines of a
// quoted value that runs on) and records what ini.v1 made of it and on
// which line. ini.v1 alone decides what a line is (header, key, comment,
// or refused), what it names, its value and how far the value runs, so
// the line numbers cannot drift from ini.v1's grammar: scan only counts
// lines and follows what ini.v1 reads the same way in a whole file (the
// current section and the numbering of "-" keys). The refused lines are
// reported together, then blanked before ini.v1 parses the rest as one
// file. TestScanAgrees and FuzzParse check that the statements add up to
// what ini.v1 reads in the whole file.

// implicitSection holds keys that come before any section header; ini.v1
// files them under its DEFAULT section.
const implicitSection = ""

// keyPos is where a key is set.
type keyPos struct {
	first       int    // the first line setting it
	line        int    // the last line setting it: the value ini.v1 keeps
	value       string // the value ini.v1 read on that line
	commentOnly bool   // "key = ; note": the value is empty, the rest a comment
}

// index maps sections and keys to lines.
type index struct {
	headers  map[string][]int              // section -> header lines
	keys     map[string]map[string]*keyPos // section -> key -> position
	sections []string                      // sections by first header, implicitSection first
	order    map[string][]string           // section -> keys by first line
	errs     Errors                        // refused lines and duplicates
	blank    map[int]bool                  // lines ini.v1 refuses
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

// Options for reading one statement. Shadows are allowed, so that a key's
// first value is kept when a statement is read with the lines after it,
// and so that Key.AddShadow, which ini.v1 refuses for a "-" key, tells
// those apart.
var (
	runOnOptions = func() ini.LoadOptions {
		o := loadOptions
		o.AllowShadows = true
		return o
	}()
	// statementOptions also make a header a section of its own, so that
	// "[DEFAULT]" is seen.
	statementOptions = func() ini.LoadOptions {
		o := runOnOptions
		o.AllowNonUniqueSections = true
		return o
	}()
	// bareCommentOptions read a comment without a space before it; a value
	// that is then empty was only a comment ("key = ; note").
	bareCommentOptions = func() ini.LoadOptions {
		o := runOnOptions
		o.SpaceBeforeInlineComment = false
		return o
	}()
)

// kind is what ini.v1 makes of a statement.
type kind int

const (
	blankStatement  kind = iota // a blank line or a comment
	headerStatement             // [section]
	keyStatement                // key = value
	badStatement                // a line ini.v1 refuses
)

// statement is what ini.v1 reads from one line, or from the lines of a
// quoted value that runs on.
type statement struct {
	kind  kind
	name  string // the section or key; "#1" for any "-" key
	auto  bool   // a "-" key, which ini.v1 numbers per section
	value string // a key's value
	end   int    // the offset just past its last line
	err   error  // why ini.v1 refuses a bad line
}

// lineEnd returns the offset just past the line starting at start.
func lineEnd(data []byte, start int) int {
	if i := bytes.IndexByte(data[start:], '\n'); i >= 0 {
		return start + i + 1
	}
	return len(data)
}

// source returns data[start:end] for ini.v1 to read, preceded by the end of
// the previous line when there is one, so that only the file's first line
// loses a byte-order mark, as in a whole-file parse.
func source(data []byte, start, end int) []byte {
	return data[max(start-1, 0):end]
}

// read asks ini.v1 what the statement starting at the line data[start:end]
// is.
func read(data []byte, start, end int) statement {
	f, err := ini.LoadSources(statementOptions, source(data, start, end))
	if err == nil {
		secs := f.Sections()
		if len(secs) > 1 {
			return statement{kind: headerStatement, name: secs[1].Name(), end: end}
		}
		if keys := secs[0].Keys(); len(keys) > 0 {
			return keyRead(keys[0], end)
		}
		return statement{kind: blankStatement, end: end}
	}
	// Only a quoted value reads past its line: let ini.v1 read on over a
	// window of lines that doubles until the value closes or the window
	// holds the rest of the file, so that a file of many such values
	// costs time in proportion to its length. ini.v1 fills a File as it
	// reads and keeps what it read when it stops at a refused line.
	for lines, stop := 2, end; stop < len(data); lines *= 2 {
		for range lines {
			stop = lineEnd(data, stop)
		}
		rest := ini.Empty(runOnOptions)
		_ = rest.Append(source(data, start, stop))
		if keys := rest.Section(ini.DefaultSection).Keys(); len(keys) > 0 {
			k := keys[0]
			// The value holds every line break it ran over.
			for range strings.Count(k.Value(), "\n") {
				end = lineEnd(data, end)
			}
			return keyRead(k, end)
		}
	}
	return statement{kind: badStatement, end: end, err: err}
}

// keyRead describes k, read from a statement ending at end.
func keyRead(k *ini.Key, end int) statement {
	return statement{kind: keyStatement, name: k.Name(), value: k.Value(), end: end,
		auto: k.AddShadow(k.Value()) != nil}
}

// commentOnly reports whether a value ini.v1 read from data[start:end] is
// only a comment, which ini.v1 keeps because no space precedes it.
func commentOnly(data []byte, start, end int, value string) bool {
	if value == "" || value[0] != ';' && value[0] != '#' {
		return false
	}
	f, err := ini.LoadSources(bareCommentOptions, source(data, start, end))
	if err != nil {
		return false
	}
	keys := f.Section(ini.DefaultSection).Keys()
	return len(keys) > 0 && keys[0].Value() == ""
}

// scan indexes data and returns it with the refused lines blanked.
func scan(file string, data []byte) (*index, []byte) {
	ix := &index{
		headers:  map[string][]int{},
		keys:     map[string]map[string]*keyPos{},
		sections: []string{implicitSection},
		order:    map[string][]string{},
		blank:    map[int]bool{},
	}
	section := implicitSection
	autoKey := 1 // ini.v1 names "-" keys #1, #2, ... per section header
	n := 1
	for start := 0; start < len(data); n++ {
		end := lineEnd(data, start)
		st := read(data, start, end)
		switch st.kind {
		case badStatement:
			ix.errs = append(ix.errs, badLine(file, n, section, data, start, end, st.err))
			ix.blank[n] = true
		case headerStatement:
			name := st.name
			if prev := ix.headers[name]; len(prev) > 0 {
				ix.errs = append(ix.errs, &Error{File: file, Line: n, Section: name,
					Msg: "duplicate section (first on line " + strconv.Itoa(prev[0]) + "); write each section once"})
			} else {
				ix.sections = append(ix.sections, name)
			}
			ix.headers[name] = append(ix.headers[name], n)
			section, autoKey = name, 1
		case keyStatement:
			name := st.name
			if st.auto {
				name = "#" + strconv.Itoa(autoKey)
				autoKey++
			}
			pos := &keyPos{first: n, line: n, value: st.value, commentOnly: commentOnly(data, start, st.end, st.value)}
			keys := ix.keys[section]
			if keys == nil {
				keys = map[string]*keyPos{}
				ix.keys[section] = keys
			}
			if prev := keys[name]; prev != nil {
				v := pos.value
				if pos.commentOnly {
					v = ""
				}
				ix.errs = append(ix.errs, &Error{File: file, Line: n, Section: section, Key: name, Value: v, hasValue: true,
					Msg: "duplicate key (first on line " + strconv.Itoa(prev.first) + "); set each key once per section"})
				prev.line, prev.value, prev.commentOnly = pos.line, pos.value, pos.commentOnly
			} else {
				keys[name] = pos
				ix.order[section] = append(ix.order[section], name)
			}
		}
		// A value that ran on covers the lines it ran over.
		n += bytes.Count(data[end:st.end], []byte("\n"))
		start = st.end
	}
	if len(ix.blank) == 0 {
		return ix, data
	}
	out := make([]byte, 0, len(data))
	for i, l := range bytes.SplitAfter(data, []byte("\n")) {
		if ix.blank[i+1] {
			l = l[len(bytes.TrimRight(l, "\n")):]
		}
		out = append(out, l...)
	}
	return ix, out
}

// badLine reports the line data[start:end], which ini.v1 refuses with err,
// saying what is allowed instead.
func badLine(file string, n int, section string, data []byte, start, end int, err error) *Error {
	line := data[start:end]
	if start == 0 {
		line = line[bomLen(line):]
	}
	e := &Error{File: file, Line: n, Value: string(bytes.TrimSpace(line)), hasValue: true}
	msg := err.Error()
	var value string
	switch {
	case ini.IsErrDelimiterNotFound(err):
		e.Msg = "not a key = value line; want key = value, [section] or a ; comment"
	case ini.IsErrEmptyKeyName(err), strings.HasSuffix(msg, "empty key name"):
		e.Msg = "missing key name; want key = value"
	case strings.HasPrefix(msg, "unclosed section"):
		e.Msg = "unclosed section header; want [fastws] or [instance.NAME]"
	case msg == "empty section name":
		e.Msg = "empty section name; want [fastws] or [instance.NAME]"
	case strings.HasPrefix(msg, "missing closing key quote: "):
		e.Msg = "unclosed quote in key name; want key = value"
	case scanQuoted(msg, "missing closing key quote from %q", &value) && bytes.HasSuffix(data[:end], []byte(value)):
		// A quoted value that never closes: name its key, which ini.v1
		// reads from the line without the value.
		k, kerr := ini.LoadSources(statementOptions, source(data, start, end-len(value)))
		if kerr != nil || len(k.Section(ini.DefaultSection).Keys()) == 0 {
			e.Msg = "unclosed quote in value; close it or remove it"
			break
		}
		value = strings.TrimSpace(value)
		quote := `"`
		switch {
		case strings.HasPrefix(value, `"""`):
			quote = `"""`
		case strings.HasPrefix(value, "`"):
			quote = "`"
		}
		e.Section, e.Key, e.Value = section, k.Section(ini.DefaultSection).Keys()[0].Name(), value
		e.Msg = "unclosed " + quote + " quote; close it or remove it"
	default:
		e.Msg = "not read by ini.v1 (" + strings.TrimSpace(msg) + "); want key = value, [section] or a ; comment"
	}
	return e
}

// scanQuoted reports whether msg begins with format, a pattern holding
// one %q, and stores the quoted string in v.
func scanQuoted(msg, format string, v *string) bool {
	n, err := fmt.Sscanf(msg, format, v)
	return err == nil && n == 1
}

// bomLen returns the length of the byte-order mark ini.v1 strips from the
// start of a file (UTF-8, or the two UTF-16 marks), or 0, so that a
// refused first line is quoted without it.
func bomLen(data []byte) int {
	switch {
	case len(data) >= 2 && (data[0] == 0xfe && data[1] == 0xff || data[0] == 0xff && data[1] == 0xfe):
		return 2
	case len(data) >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf:
		return 3
	}
	return 0
}

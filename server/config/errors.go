package config

import (
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Error is one problem in a config file. It renders as one line naming the
// file, the line, the section, the key, the bad value and what is allowed:
//
//	config.ini:12: [instance.telnet] port = "abc": not a port (1-65535)
//
// Line is 0 when the problem has no single line (a missing section, say);
// the line number is then left out. Key is empty for section-level problems
// and Section is empty for problems outside any section.
type Error struct {
	File    string
	Line    int
	Section string
	Key     string
	Value   string
	Msg     string

	// hasValue renders Value even when it is empty: `port = ""` differs
	// from a missing port.
	hasValue bool
}

// Error renders e as one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(oneLine(e.File))
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	showValue := e.Value != "" || e.hasValue
	switch {
	case e.Section != "" && e.Key == "" && !showValue:
		b.WriteString("[" + oneLine(e.Section) + "]: ")
	case e.Section != "":
		b.WriteString("[" + oneLine(e.Section) + "] ")
	}
	switch {
	case e.Key != "" && showValue:
		b.WriteString(oneLine(e.Key) + " = " + strconv.Quote(e.Value) + ": ")
	case e.Key != "":
		b.WriteString(oneLine(e.Key) + ": ")
	case showValue:
		b.WriteString(strconv.Quote(e.Value) + ": ")
	}
	b.WriteString(oneLine(e.Msg))
	return b.String()
}

// Errors is every problem found in one config file, in line order. Load and
// Parse return it (as an error) when the file is invalid.
type Errors []*Error

// Error renders one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortByLine orders problems by line; problems without a line (they concern
// the whole file) go last, in the order found.
func (es Errors) sortByLine() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Line, es[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
}

// oneLine escapes control characters so that each Error stays on one line
// whatever the file holds.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

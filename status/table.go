package status

import (
	"io"
	"strings"
	"unicode"
)

// table lines cells up in columns, two spaces apart, by the width they take
// on a terminal. text/tabwriter counts runes, so one Chinese nickname (two
// columns per character) would push the rest of its row out of line.
type table struct {
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// write writes the rows; the last cell of a row is not padded.
func (t *table) write(w io.Writer) {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], cellWidth(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-cellWidth(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	io.WriteString(w, b.String())
}

// cellWidth returns how many terminal columns s takes: two for East Asian
// wide and fullwidth characters, none for combining marks and format
// characters, one for the rest. s holds no control characters (see text).
func cellWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		case wide(r):
			n += 2
		default:
			n++
		}
	}
	return n
}

// wideRanges are the main blocks of Unicode's East Asian Wide (W) and
// Fullwidth (F) characters: CJK, kana, hangul, fullwidth forms and the
// common emoji. Exactness is not needed: a miss costs one column.
var wideRanges = [...][2]rune{
	{0x1100, 0x115F},   // Hangul Jamo initials
	{0x2E80, 0x303E},   // CJK radicals, ideographic description, CJK symbols and punctuation
	{0x3041, 0x33FF},   // kana, bopomofo, Hangul compatibility, CJK compatibility
	{0x3400, 0x4DBF},   // CJK extension A
	{0x4E00, 0x9FFF},   // CJK unified ideographs
	{0xA000, 0xA4CF},   // Yi
	{0xA960, 0xA97F},   // Hangul Jamo extended A
	{0xAC00, 0xD7A3},   // Hangul syllables
	{0xF900, 0xFAFF},   // CJK compatibility ideographs
	{0xFE10, 0xFE19},   // vertical forms
	{0xFE30, 0xFE6F},   // CJK compatibility forms, small forms
	{0xFF00, 0xFF60},   // fullwidth forms
	{0xFFE0, 0xFFE6},   // fullwidth signs
	{0x1F300, 0x1F64F}, // pictographs, emoticons
	{0x1F900, 0x1F9FF}, // supplemental pictographs
	{0x20000, 0x2FFFD}, // CJK extensions B-F
	{0x30000, 0x3FFFD}, // CJK extension G and on
}

func wide(r rune) bool {
	if r < wideRanges[0][0] {
		return false
	}
	for _, rg := range wideRanges {
		if r >= rg[0] && r <= rg[1] {
			return true
		}
	}
	return false
}

package status

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fieldRow matches a field row of SCHEMA.md's tables: | `name` | type | ...
var fieldRow = regexp.MustCompile("^\\| `([A-Za-z0-9]+)` \\|")

// schemaFields returns the field names SCHEMA.md lists under each "## "
// heading, by the heading's first word.
func schemaFields(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var section string
	for line := range strings.Lines(string(b)) {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = strings.Fields(h)[0]
			continue
		}
		if m := fieldRow.FindStringSubmatch(line); m != nil {
			out[section] = append(out[section], m[1])
		}
	}
	return out
}

// schemaExamples returns SCHEMA.md's ```json blocks, in order.
func schemaExamples(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var block *strings.Builder
	for line := range strings.Lines(string(b)) {
		switch {
		case block == nil && line == "```json\n":
			block = new(strings.Builder)
		case block != nil && line == "```\n":
			out = append(out, block.String())
			block = nil
		case block != nil:
			block.WriteString(line)
		}
	}
	if block != nil {
		t.Fatal("SCHEMA.md: unterminated ```json block")
	}
	return out
}

// docExamples returns the JSON examples of the package documentation: its
// indented blocks that start with a line "{".
func docExamples(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var block *strings.Builder
	sc := bufio.NewScanner(strings.NewReader(f.Doc.Text()))
	for sc.Scan() {
		code, indented := strings.CutPrefix(sc.Text(), "\t")
		switch {
		case block == nil && indented && code == "{":
			block = new(strings.Builder)
			block.WriteString("{\n")
		case block != nil && indented:
			block.WriteString(code + "\n")
		case block != nil:
			out = append(out, block.String())
			block = nil
		}
	}
	if block != nil {
		out = append(out, block.String())
	}
	return out
}

// keys returns the sorted keys of a JSON object.
func keys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("got %T, want a JSON object", v)
	}
	return slices.Sorted(maps.Keys(m))
}

// asMap encodes v as the daemon does and decodes it generically.
func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJSON(&b, v); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSchemaFieldsMatchJSON keeps SCHEMA.md's field tables equal to what
// the code writes, so the documented interface cannot rot.
func TestSchemaFieldsMatchJSON(t *testing.T) {
	doc := schemaFields(t)
	snap := asMap(t, Snapshot{Instances: []Instance{{}}, Cluster: Cluster{Nodes: []ClusterNode{{}}}}.wire())
	conns := asMap(t, wireConnections([]Connection{{}}))
	tests := []struct {
		section string
		object  any
	}{
		{"Snapshot", snap},
		{"Daemon", snap["daemon"]},
		{"Instance", snap["instances"].([]any)[0]},
		{"Cluster", snap["cluster"]},
		{"ClusterNode", snap["cluster"].(map[string]any)["nodes"].([]any)[0]},
		{"Connections", conns},
		{"Connection", conns["connections"].([]any)[0]},
	}
	for _, tt := range tests {
		t.Run(tt.section, func(t *testing.T) {
			got := keys(t, tt.object)
			want := slices.Sorted(slices.Values(doc[tt.section]))
			if !slices.Equal(got, want) {
				t.Errorf("JSON keys %v, SCHEMA.md lists %v", got, want)
			}
		})
	}
	var listed []string
	for _, tt := range tests {
		listed = append(listed, tt.section)
	}
	for section := range doc {
		if !slices.Contains(listed, section) {
			t.Errorf("SCHEMA.md section %q lists fields no test checks", section)
		}
	}
}

// TestSchemaExamples checks that SCHEMA.md's examples are exactly what
// WriteJSON prints for them, that they use every field, and that the
// package documentation shows the same examples.
func TestSchemaExamples(t *testing.T) {
	examples := schemaExamples(t)
	if len(examples) != 2 {
		t.Fatalf("got %d ```json blocks in SCHEMA.md, want 2 (status, connections)", len(examples))
	}
	tests := []struct {
		name    string
		example string
		into    any
	}{
		{"status", examples[0], new(Snapshot)},
		{"connections", examples[1], new(Connections)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(tt.example))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tt.into); err != nil {
				t.Fatalf("decode the example: %v", err)
			}
			var b bytes.Buffer
			if err := WriteJSON(&b, tt.into); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.example {
				t.Errorf("WriteJSON of the example:\n%s\nwant it unchanged:\n%s", got, tt.example)
			}
			assertNoZeroField(t, reflect.ValueOf(tt.into).Elem(), tt.name)
		})
	}
	if got := docExamples(t); !slices.Equal(got, examples) {
		t.Errorf("doc.go's JSON examples differ from SCHEMA.md's:\n%s", strings.Join(got, "\n"))
	}
}

// assertNoZeroField fails if some field of v has its zero value in every
// element, so that each example shows each field with a real value.
func assertNoZeroField(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.Interface().(time.Time).IsZero() {
				t.Errorf("example: %s is zero", path)
			}
			return
		}
		for i := range v.NumField() {
			assertNoZeroField(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("example: %s is empty", path)
			return
		}
		// A field is shown if some element has it non-zero.
		elem := v.Type().Elem()
		if elem.Kind() != reflect.Struct {
			return
		}
		for i := range elem.NumField() {
			shown := false
			for j := range v.Len() {
				if !v.Index(j).Field(i).IsZero() {
					shown = true
				}
			}
			if !shown {
				t.Errorf("example: %s[].%s is zero in every element", path, elem.Field(i).Name)
			}
		}
	default:
		if v.IsZero() {
			t.Errorf("example: %s is zero", path)
		}
	}
}

package config

import (
	"reflect"
	"slices"
	"testing"
)

// restarts decides, for every field of Instance and of its Limits, whether
// a reload that changes it restarts the instance. A field added to either
// struct fails TestSameFields until it is listed here: add it with true
// (Same compares it) or, if a running instance can take the new value
// without a restart, false and teach Same to leave it out.
var restarts = map[string]bool{
	"Section":           true,
	"Name":              true,
	"Protocol":          true,
	"Host":              true,
	"Port":              true,
	"ChildProcessCount": true,
	"AllowedOrigins":    true,
	"TLSCert":           true, // another file; the same files renewed are reloaded without a restart
	"TLSKey":            true,

	"Limits.MaxPackageSize":      true,
	"Limits.MaxSendBuffer":       true,
	"Limits.IdleTimeout":         true,
	"Limits.MaxConnections":      true,
	"Limits.MaxConnectionsPerIP": true,
	"Limits.MessagesPerSecond":   true,
	"Limits.MessageBurst":        true,
	"Limits.PingInterval":        true,
	"Limits.PongTimeout":         true,
	"Limits.BytesPerSecond":      true,
	"Limits.BytesBurst":          true,
	"Limits.FanoutDelay":         true,
}

// field is one leaf field of Instance: its dotted name and index path.
type field struct {
	name  string
	index []int
}

// leafFields returns every field of a struct type, descending into nested
// structs (Limits) so that each limit is decided on its own.
func leafFields(t reflect.Type, prefix string, index []int) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, idx := prefix+f.Name, append(slices.Clone(index), i)
		if f.Type.Kind() == reflect.Struct {
			out = append(out, leafFields(f.Type, name+".", idx)...)
			continue
		}
		out = append(out, field{name, idx})
	}
	return out
}

// change sets v, a field of Instance, to a value other than the one it holds.
func change(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	default:
		t.Fatalf("kind %s not handled; teach change how to change it", v.Kind())
	}
}

// TestSameFields checks that every field of Instance (and of its Limits)
// has been decided in restarts, and that Same follows each decision:
// changing a field that restarts makes Same false, changing one that does
// not leaves it true.
func TestSameFields(t *testing.T) {
	fields := leafFields(reflect.TypeOf(Instance{}), "", nil)
	names := map[string]bool{}
	for _, f := range fields {
		names[f.name] = true
		if _, ok := restarts[f.name]; !ok {
			t.Errorf("field %s: not decided; add it to restarts in same_test.go (does a reload that changes it restart the instance?)", f.name)
		}
	}
	for name := range restarts {
		if !names[name] {
			t.Errorf("restarts lists %s, which Instance no longer has", name)
		}
	}
	base := Instance{Section: "instance.a", Name: "A", Protocol: ProtocolWebSocket, Host: "0.0.0.0",
		Port: 1, ChildProcessCount: 2, Limits: DefaultLimits(), AllowedOrigins: []string{"https://a"}}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			o := base
			o.AllowedOrigins = slices.Clone(base.AllowedOrigins)
			change(t, reflect.ValueOf(&o).Elem().FieldByIndex(f.index))
			if got, want := base.Same(o), !restarts[f.name]; got != want {
				t.Errorf("Same after changing %s: got %v, want %v", f.name, got, want)
			}
			if got, want := o.Same(base), !restarts[f.name]; got != want {
				t.Errorf("Same the other way after changing %s: got %v, want %v", f.name, got, want)
			}
		})
	}
}

// TestSameEmptyOrigins checks that a nil and an empty AllowedOrigins, which
// both allow any origin, do not restart an instance.
func TestSameEmptyOrigins(t *testing.T) {
	a, b := Instance{Port: 1}, Instance{Port: 1, AllowedOrigins: []string{}}
	if !a.Same(b) || !b.Same(a) {
		t.Errorf("Same(nil origins, empty origins): got false, want true")
	}
}

// Package examples holds the example functions, one command per directory,
// and their tests: each is built for wasip1, its module checked against the
// guest ABI (docs/ABI.md) the way deploy checks it, and (with cgo) run under
// wasmtime against a fake host (run_test.go).
package examples

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aerodb/aerofn/internal/testenv/guest"
)

// abiImports is every import of module aerodb in ABI v1, with its type.
var abiImports = map[string]string{
	"input_len":  "() -> (i32)",
	"input_read": "(i32 i32) -> (i32)",
	"output":     "(i32 i32) -> (i32)",
	"log":        "(i32 i32 i32) -> ()",
	"env":        "(i32 i32) -> (i32)",
	"db_query":   "(i32 i32) -> (i32)",
	"http_fetch": "(i32 i32) -> (i32)",
	"reply_read": "(i32 i32) -> (i32)",
}

// exampleNames lists the example directories: every one with a main.go.
func exampleNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(e.Name(), "main.go")); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no examples found")
	}
	return names
}

// buildExample builds ./name for wasip1 once per test binary and returns
// the module's bytes.
func buildExample(t *testing.T, name string) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the examples with the Go toolchain")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	return guest.Once(t, "./examples/"+name)
}

func TestExamplesBuildToABI(t *testing.T) {
	for _, name := range exampleNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bin := buildExample(t, name)
			m, err := parseModule(bin)
			if err != nil {
				t.Fatalf("parsing %s.wasm: %v", name, err)
			}
			checkModule(t, m)
			var wasi []string
			for _, im := range m.imports {
				if im.module == "wasi_snapshot_preview1" && !slices.Contains(wasi, im.name) {
					wasi = append(wasi, im.name)
				}
			}
			t.Logf("%d bytes; wasi_snapshot_preview1 imports: %s", len(bin), strings.Join(wasi, " "))
		})
	}
}

func checkModule(t *testing.T, m *module) {
	t.Helper()
	want := map[string]struct {
		kind byte
		sig  string
	}{
		"memory":      {kindMemory, ""},
		"handler":     {kindFunc, "() -> (i32)"},
		"_initialize": {kindFunc, "() -> ()"}, // runs init, which registers the handler
	}
	for name, w := range want {
		i := slices.IndexFunc(m.exports, func(e export) bool { return e.name == name })
		if i < 0 {
			t.Errorf("no export %q", name)
			continue
		}
		e := m.exports[i]
		if e.kind != w.kind {
			t.Errorf("export %q has kind %d, want %d", name, e.kind, w.kind)
		} else if w.kind == kindFunc {
			if sig := m.funcSig(e.index); sig != w.sig {
				t.Errorf("export %q has type %s, want %s", name, sig, w.sig)
			}
		}
	}
	for _, im := range m.imports {
		switch im.module {
		case "wasi_snapshot_preview1":
		case "aerodb":
			want, ok := abiImports[im.name]
			if !ok {
				t.Errorf("import aerodb.%s is not in ABI v1", im.name)
			} else if im.kind != kindFunc || im.sig != want {
				t.Errorf("import aerodb.%s has type %s, want %s", im.name, im.sig, want)
			}
		default:
			t.Errorf("import %s.%s is from a module deploy rejects", im.module, im.name)
		}
	}
}

// A minimal reader of the WebAssembly binary format: the type, import,
// function and export sections, which is all the ABI constrains.

const (
	kindFunc   = 0
	kindMemory = 2
)

type module struct {
	types     []string // "(i32 i32) -> (i32)"
	imports   []importEntry
	funcTypes []uint32 // type index of every function, imported ones first
	exports   []export
}

type importEntry struct {
	module, name string
	kind         byte
	sig          string // for functions
}

type export struct {
	name  string
	kind  byte
	index uint32
}

func (m *module) funcSig(index uint32) string {
	if int(index) >= len(m.funcTypes) || int(m.funcTypes[index]) >= len(m.types) {
		return "?"
	}
	return m.types[m.funcTypes[index]]
}

// reader walks a byte slice; its first error sticks and every read after it
// returns zero values, so parsers check once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u32() uint32 {
	v, n := binary.Uvarint(r.b)
	if r.err != nil || n <= 0 || v > 1<<32-1 {
		r.fail("bad LEB128")
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

func (r *reader) bytes(n uint32) []byte {
	if r.err != nil || uint64(n) > uint64(len(r.b)) {
		r.fail("unexpected end")
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) name() string { return string(r.bytes(r.u32())) }

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
		r.b = nil
	}
}

// limits skips a table's or memory's limits: a flags byte whose bit 0 says a
// maximum follows.
func (r *reader) limits() {
	if r.byte()&1 != 0 {
		r.u32()
	}
	r.u32()
}

func (r *reader) valTypes() string {
	n := r.u32()
	var parts []string
	for i := uint32(0); i < n && r.err == nil; i++ {
		switch t := r.byte(); t {
		case 0x7f:
			parts = append(parts, "i32")
		case 0x7e:
			parts = append(parts, "i64")
		case 0x7d:
			parts = append(parts, "f32")
		case 0x7c:
			parts = append(parts, "f64")
		default:
			parts = append(parts, fmt.Sprintf("0x%02x", t))
		}
	}
	return "(" + strings.Join(parts, " ") + ")"
}

func parseModule(bin []byte) (*module, error) {
	if !bytes.HasPrefix(bin, []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, errors.New("not a WebAssembly 1.0 module")
	}
	m := &module{}
	r := &reader{b: bin[8:]}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		s := &reader{b: r.bytes(r.u32())}
		switch id {
		case 1: // type
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				if s.byte() != 0x60 {
					s.fail("type is not a function type")
				}
				params := s.valTypes()
				m.types = append(m.types, params+" -> "+s.valTypes())
			}
		case 2: // import
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				im := importEntry{module: s.name(), name: s.name(), kind: s.byte()}
				switch im.kind {
				case kindFunc:
					ti := s.u32()
					m.funcTypes = append(m.funcTypes, ti)
					if int(ti) < len(m.types) {
						im.sig = m.types[ti]
					}
				case 1: // table: reference type, limits
					s.byte()
					s.limits()
				case kindMemory:
					s.limits()
				case 3: // global: value type, mutability
					s.byte()
					s.byte()
				default:
					s.fail(fmt.Sprintf("import kind %d", im.kind))
				}
				m.imports = append(m.imports, im)
			}
		case 3: // function
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				m.funcTypes = append(m.funcTypes, s.u32())
			}
		case 7: // export
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				m.exports = append(m.exports, export{name: s.name(), kind: s.byte(), index: s.u32()})
			}
		}
		if s.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, s.err)
		}
	}
	return m, r.err
}

package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// The grow guard: how a refused memory.grow becomes visible to the host.
//
// wasmtime's store limiter, as wasmtime-go exposes it, refuses growth past
// the memory cap by returning -1 to the guest and tells the host nothing. A
// guest that then traps (or returns an error) while its memory is still
// small, without printing "out of memory", would be reported as an ordinary
// error. So every module is rewritten before it is compiled: each
// memory.grow instruction becomes a call to one function appended to the
// module, which performs the grow and, when it is refused, stores the
// number of pages asked for in a mutable i32 global exported as
// growRefusedExport. After a failed call Run reads the global; non-zero
// means the guest hit its cap, and the call is memory_exceeded.
//
// The function and the global are appended after the module's own, so no
// function or global index changes (imports come first in both index
// spaces, and nothing is imported). The type (i32) -> i32 is reused when
// the module has it, else appended. The guard behaves exactly like
// memory.grow apart from the store to the global, which the guest cannot
// see: the global is only exported, never imported or named.
//
// A module the reader does not understand (see wasmbin.go: more than one
// memory, imports other than functions, an opcode it does not know, GC
// types) is compiled as it is, unguarded; Run then falls back on the rules
// doc.go gives (memory full to the page, an "out of memory" line).
//
// The rewrite is part of what an artifact holds: artifactFormat and the
// cache file names changed with it, so artifacts compiled before are
// compiled again rather than run unguarded.

// growRefusedExport names the guard's global.
const growRefusedExport = reservedPrefix + "grow-refused"

// typeGrow is the function type (i32) -> i32 as encoded in a type section.
var typeGrow = []byte{0x60, 1, valI32, 1, valI32}

// errNoGrow: the module has no memory.grow, so there is nothing to guard.
var errNoGrow = errors.New("no memory.grow")

// guardGrow returns wasm with its memory.grow instructions guarded, or an
// error saying why it is returned unchanged. A module that exports a name
// beginning with reservedPrefix is never rewritten: checkModule refuses it.
func guardGrow(wasm []byte) ([]byte, error) {
	m, err := parseWasm(wasm)
	if err != nil {
		return nil, err
	}
	for _, ex := range m.exports {
		if strings.HasPrefix(ex.name, reservedPrefix) {
			return nil, fmt.Errorf("export %q is reserved", ex.name)
		}
	}
	nImported, err := countImportedFuncs(m.section(secImport))
	if err != nil {
		return nil, err
	}
	types, typeIdx, err := withType(m.section(secType), typeGrow)
	if err != nil {
		return nil, err
	}
	funcs := m.section(secFunction)
	nDefined, err := countEntries(funcs)
	if err != nil {
		return nil, err
	}
	guardFunc := nImported + nDefined
	globalIdx := uint32(len(m.globals)) // no imported globals (parseWasm)

	code, grows, err := rewriteGrows(m.section(secCode), nDefined, guardFunc)
	if err != nil {
		return nil, err
	}
	if grows == 0 {
		return nil, errNoGrow
	}
	code = appendGuardBody(code, globalIdx)

	funcSec := appendULEB(nil, uint64(nDefined)+1)
	funcSec = append(funcSec, funcs[entriesStart(funcs):]...)
	funcSec = appendULEB(funcSec, uint64(typeIdx))

	globSec := appendULEB(nil, uint64(len(m.globals))+1)
	globSec = append(globSec, m.section(secGlobal)[entriesStart(m.section(secGlobal)):]...)
	globSec = append(globSec, valI32, 1, 0x41, 0, 0x0b) // mut i32 = i32.const 0

	exports := append(append([]wasmExport(nil), m.exports...), wasmExport{growRefusedExport, kindGlobal, globalIdx})

	replace := map[byte][]byte{secType: types, secFunction: funcSec, secGlobal: globSec, secExport: encodeExports(exports), secCode: code}
	add := map[byte][]byte{}
	for id, body := range replace {
		if m.section(id) == nil {
			add[id] = body
			delete(replace, id)
		}
	}
	return m.encode(replace, add, false), nil
}

// countEntries reads the count that begins a vector section; a missing
// section counts none.
func countEntries(body []byte) (uint32, error) {
	if body == nil {
		return 0, nil
	}
	r := &wasmReader{b: body}
	n := r.u32()
	return n, r.err
}

// entriesStart is the offset of a vector section's first entry, after its
// count (0 for a missing section).
func entriesStart(body []byte) int {
	if body == nil {
		return 0
	}
	r := &wasmReader{b: body}
	r.u32()
	return r.off
}

func countImportedFuncs(body []byte) (uint32, error) {
	if body == nil {
		return 0, nil
	}
	r := &wasmReader{b: body}
	var funcs uint32
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		r.name()
		r.name()
		if r.byte() == kindFunc {
			funcs++
		}
		r.u32()
	}
	return funcs, r.err
}

// withType returns the type section with want in it (appended if no entry
// equals it) and want's index. Only plain function types are understood.
func withType(body []byte, want []byte) ([]byte, uint32, error) {
	if body == nil {
		return append([]byte{1}, want...), 0, nil
	}
	r := &wasmReader{b: body}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.off
		if form := r.byte(); form != 0x60 && r.err == nil {
			return nil, 0, fmt.Errorf("type %d has form %#x", i, form)
		}
		for vec := 0; vec < 2; vec++ {
			for k := r.u32(); k > 0 && r.err == nil; k-- {
				skipValType(r)
			}
		}
		if r.err == nil && string(body[start:r.off]) == string(want) {
			return body, i, nil
		}
	}
	if r.err != nil {
		return nil, 0, fmt.Errorf("type section: %w", r.err)
	}
	out := appendULEB(nil, uint64(n)+1)
	out = append(out, body[entriesStart(body):]...)
	return append(out, want...), n, nil
}

// rewriteGrows returns the code section's n bodies with every memory.grow
// replaced by call guardFunc (the count of the result leaves room for the
// guard's body), and how many it replaced.
func rewriteGrows(body []byte, n, guardFunc uint32) ([]byte, int, error) {
	r := &wasmReader{b: body}
	if got := r.u32(); got != n || r.err != nil {
		return nil, 0, fmt.Errorf("code section has %d bodies for %d functions", got, n)
	}
	out := appendULEB(make([]byte, 0, len(body)+64), uint64(n)+1)
	var call []byte
	call = appendULEB(append(call, 0x10), uint64(guardFunc))
	var total int
	var fn []byte
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		src := r.bytes(size)
		if r.err != nil {
			return nil, 0, r.err
		}
		fr := &wasmReader{b: src}
		for groups := fr.u32(); groups > 0 && fr.err == nil; groups-- {
			fr.u32()
			skipValType(fr)
		}
		fn = fn[:0]
		copied := 0
		for !fr.done() {
			at := fr.off
			op := fr.byte()
			err := skipInstr(fr, op)
			var sc *stateChangeError
			if err != nil && !errors.As(err, &sc) {
				return nil, 0, fmt.Errorf("function %d: %w", i, err)
			}
			if op != 0x40 {
				continue
			}
			if mem := src[at+1 : fr.off]; len(mem) != 1 || mem[0] != 0 {
				return nil, 0, fmt.Errorf("function %d: memory.grow of a memory other than 0", i)
			}
			fn = append(append(fn, src[copied:at]...), call...)
			copied = fr.off
			total++
		}
		if fr.err != nil {
			return nil, 0, fmt.Errorf("function %d: %w", i, fr.err)
		}
		if copied == 0 {
			out = appendULEB(out, uint64(len(src)))
			out = append(out, src...)
			continue
		}
		fn = append(fn, src[copied:]...)
		out = appendULEB(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	if !r.done() {
		return nil, 0, errors.New("code section has bytes after its bodies")
	}
	return out, total, nil
}

// appendGuardBody appends the guard's body:
//
//	(func (param $pages i32) (result i32) (local $r i32)
//	  (local.set $r (memory.grow (local.get $pages)))
//	  (if (i32.eq (local.get $r) (i32.const -1))
//	    (then (global.set $refused (local.get $pages))))
//	  (local.get $r))
func appendGuardBody(code []byte, global uint32) []byte {
	fn := []byte{
		1, 1, valI32, // one local: i32
		0x20, 0, // local.get 0
		0x40, 0, // memory.grow 0
		0x22, 1, // local.tee 1
		0x41, 0x7f, // i32.const -1
		0x46,       // i32.eq
		0x04, 0x40, // if
		0x20, 0, // local.get 0
		0x24, // global.set
	}
	fn = appendULEB(fn, uint64(global))
	fn = append(fn,
		0x0b,    // end
		0x20, 1, // local.get 1
		0x0b, // end
	)
	code = appendULEB(code, uint64(len(fn)))
	return append(code, fn...)
}

// growRefused returns the pages of the last memory.grow the guard saw
// refused in inst (0: none, or an unguarded module).
func growRefused(store *wasmtime.Store, inst *wasmtime.Instance) uint32 {
	ext := inst.GetExport(store, growRefusedExport)
	if ext == nil {
		return 0
	}
	defer ext.Close()
	g := ext.Global()
	if g == nil {
		return 0
	}
	v := g.Get(store)
	if v.Kind() != wasmtime.KindI32 {
		return 0
	}
	return uint32(v.I32())
}

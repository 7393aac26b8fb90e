package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"unicode/utf8"
)

// A minimal reader and writer of the WebAssembly binary format, just enough to
// pre-initialise a module (preinit.go): sections are kept as raw bytes and
// copied through unchanged, except the few a snapshot rewrites (memory,
// global, export, start, data count, data) and the names of data segments.
// Code is never rewritten, only scanned for instructions that would change
// instance state a snapshot does not capture. No Go library that is kept up
// to date does this (wazero's decoder is internal; tetratelabs/wabin, the
// importable copy of it, was last published in March 2023), and the job is a
// few hundred lines.
//
// Anything this reader does not understand makes the module ineligible for
// pre-initialisation; it then runs as it always did, _initialize per call.
// wasmtime, not this code, decides whether a module is valid.

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// External kinds in imports and exports.
const (
	kindFunc   = 0
	kindTable  = 1
	kindMemory = 2
	kindGlobal = 3
)

// Value types a snapshot can hold in a global.
const (
	valI32 = 0x7f
	valI64 = 0x7e
	valF32 = 0x7d
	valF64 = 0x7c
)

type wasmSection struct {
	id   byte
	body []byte
}

type wasmExport struct {
	name string
	kind byte
	idx  uint32
}

// wasmGlobal is a global the module defines (imported ones are not allowed
// by the ABI and make a module ineligible).
type wasmGlobal struct {
	typ     []byte // the value type as encoded
	mutable bool
	init    []byte // the constant expression, including its end opcode
}

// wasmModule is a parsed module: every section raw, plus what pre-
// initialisation needs to read or rewrite.
type wasmModule struct {
	sections []wasmSection
	globals  []wasmGlobal
	exports  []wasmExport
	memFlags byte   // limits flags of the one memory: 0 (no maximum) or 1
	memMin   uint32 // its minimum in pages
	memMax   uint32 // its maximum in pages, when memFlags is 1
}

var errTruncated = errors.New("unexpected end of section")

// wasmReader decodes LEB128 numbers and names from a byte slice. The first
// error sticks; later reads return zero.
type wasmReader struct {
	b   []byte
	off int
	err error
}

func (r *wasmReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *wasmReader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *wasmReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(errTruncated)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *wasmReader) bytes(n uint32) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)-r.off) {
		r.fail(errTruncated)
		return nil
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b
}

// uleb reads an unsigned LEB128 number of at most bits bits.
func (r *wasmReader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift >= bits || (bits-shift < 7 && c&0x7f>>(bits-shift) != 0) {
			r.fail(errors.New("integer too large"))
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

// sleb reads a signed LEB128 number of at most bits bits.
func (r *wasmReader) sleb(bits uint) int64 {
	var v int64
	for shift := uint(0); ; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift >= bits {
			r.fail(errors.New("integer too large"))
			return 0
		}
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			if shift+7 < 64 && c&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			return v
		}
	}
}

func (r *wasmReader) u32() uint32 { return uint32(r.uleb(32)) }

func (r *wasmReader) name() string {
	b := r.bytes(r.u32())
	if r.err == nil && !utf8.Valid(b) {
		r.fail(errors.New("name is not UTF-8"))
	}
	return string(b)
}

// parseWasm splits a module into sections and decodes the import, memory,
// global and export sections. It refuses what a snapshot cannot represent:
// imports other than functions, a number of memories other than one, a
// memory that is shared, 64-bit or has a custom page size, and sections it
// does not know (a later proposal's, such as exception tags).
func parseWasm(b []byte) (*wasmModule, error) {
	if len(b) < 8 || !bytes.Equal(b[:8], []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, errors.New("not a WebAssembly core module")
	}
	m := &wasmModule{}
	r := &wasmReader{b: b, off: 8}
	var mems int
	for !r.done() {
		id := r.byte()
		body := r.bytes(r.u32())
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		if id > secDataCount {
			return nil, fmt.Errorf("unsupported section %d", id)
		}
		m.sections = append(m.sections, wasmSection{id, body})
		var err error
		switch id {
		case secImport:
			err = checkImports(body)
		case secMemory:
			mems, err = m.parseMemory(body)
		case secGlobal:
			err = m.parseGlobals(body)
		case secExport:
			err = m.parseExports(body)
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if mems != 1 {
		return nil, fmt.Errorf("module defines %d memories, not 1", mems)
	}
	return m, nil
}

func checkImports(body []byte) error {
	r := &wasmReader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		r.name()
		r.name()
		if k := r.byte(); k != kindFunc && r.err == nil {
			return fmt.Errorf("import of kind %d", k)
		}
		r.u32()
	}
	return r.err
}

func (m *wasmModule) parseMemory(body []byte) (int, error) {
	r := &wasmReader{b: body}
	n := r.u32()
	if n != 1 {
		return int(n), r.err
	}
	m.memFlags = r.byte()
	if m.memFlags > 1 {
		return 1, fmt.Errorf("memory limits flags %#x (shared, 64-bit or custom page size)", m.memFlags)
	}
	m.memMin = r.u32()
	if m.memFlags == 1 {
		m.memMax = r.u32()
	}
	return 1, r.err
}

func (m *wasmModule) parseGlobals(body []byte) error {
	r := &wasmReader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		var g wasmGlobal
		start := r.off
		skipValType(r)
		g.typ = body[start:r.off]
		switch mut := r.byte(); mut {
		case 0:
		case 1:
			g.mutable = true
		default:
			r.fail(fmt.Errorf("global mutability %#x", mut))
		}
		start = r.off
		if err := skipConstExpr(r); err != nil {
			return err
		}
		g.init = body[start:r.off]
		if g.mutable && r.err == nil && !isNumType(g.typ) {
			return fmt.Errorf("mutable global of type %#x", g.typ)
		}
		m.globals = append(m.globals, g)
	}
	return r.err
}

func (m *wasmModule) parseExports(body []byte) error {
	r := &wasmReader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		m.exports = append(m.exports, wasmExport{name: r.name(), kind: r.byte(), idx: r.u32()})
	}
	return r.err
}

// exportsFunc reports whether the module exports a function under name.
func (m *wasmModule) exportsFunc(name string) bool {
	for _, ex := range m.exports {
		if ex.name == name && ex.kind == kindFunc {
			return true
		}
	}
	return false
}

func (m *wasmModule) section(id byte) []byte {
	for _, s := range m.sections {
		if s.id == id {
			return s.body
		}
	}
	return nil
}

// skipConstExpr reads a constant expression up to and including its end.
func skipConstExpr(r *wasmReader) error {
	for r.err == nil {
		op := r.byte()
		if op == 0x0b {
			return r.err
		}
		if err := skipInstr(r, op); err != nil {
			return err
		}
	}
	return r.err
}

// scanCode decodes every function body and refuses instructions whose
// effect a snapshot would not capture: those that change a table
// (table.set, table.grow, table.fill, table.copy, table.init, elem.drop; a
// snapshot keeps the module's tables as its element segments build them)
// or drop and reinitialise data segments (memory.init, data.drop; a snapshot
// replaces every data segment). Memory and globals may change freely: they
// are what a snapshot records. An opcode it does not know (SIMD, atomics,
// exceptions, GC) is refused too, since it cannot be skipped safely.
func scanCode(body []byte) error {
	r := &wasmReader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		size := r.u32()
		fn := &wasmReader{b: r.bytes(size)}
		if r.err != nil {
			break
		}
		for groups := fn.u32(); groups > 0 && fn.err == nil; groups-- {
			fn.u32()
			skipValType(fn)
		}
		for !fn.done() {
			if err := skipInstr(fn, fn.byte()); err != nil {
				return err
			}
		}
		if fn.err != nil {
			return fn.err
		}
	}
	return r.err
}

func isNumType(t []byte) bool {
	return len(t) == 1 && (t[0] == valI32 || t[0] == valI64 || t[0] == valF32 || t[0] == valF64)
}

// skipValType reads a value type: a number, v128, funcref, externref, or a
// (ref null? heaptype). Other shorthands (GC's anyref and the like) are
// refused.
func skipValType(r *wasmReader) {
	switch t := r.byte(); t {
	case valI32, valI64, valF32, valF64, 0x7b, 0x70, 0x6f:
	case 0x63, 0x64:
		r.sleb(33)
	default:
		r.fail(fmt.Errorf("value type %#x", t))
	}
}

// skipBlockType reads a block type: empty, one value type, or a type index.
func skipBlockType(r *wasmReader) {
	if r.off < len(r.b) {
		if t := r.b[r.off]; t == 0x40 || t >= 0x63 && t <= 0x7f {
			if t == 0x40 {
				r.byte()
			} else {
				skipValType(r)
			}
			return
		}
	}
	r.sleb(33)
}

func skipMemArg(r *wasmReader) {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: an explicit memory index follows
		r.u32()
	}
	r.uleb(64)
}

// stateChangeError is skipInstr's answer for an instruction that changes
// state a snapshot does not capture (scanCode). Its immediates have been
// read, so a reader that does not care (guardGrow) can go on.
type stateChangeError struct{ instr, what string }

func (e *stateChangeError) Error() string {
	return fmt.Sprintf("instruction %s changes %s", e.instr, e.what)
}

// skipInstr reads the immediates of the instruction whose opcode was just
// read.
func skipInstr(r *wasmReader, op byte) error {
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1,
		op >= 0x45 && op <= 0xc4: // unreachable nop else end return drop select ref.is_null, numeric
	case op >= 0x02 && op <= 0x04: // block loop if
		skipBlockType(r)
	case op == 0x0c, op == 0x0d, // br br_if
		op == 0x10, op == 0x12, // call return_call
		op == 0x14, op == 0x15, // call_ref return_call_ref
		op >= 0x20 && op <= 0x24, // local.* global.*
		op == 0x25,               // table.get
		op == 0x3f, op == 0x40,   // memory.size memory.grow
		op == 0xd2: // ref.func
		r.u32()
	case op == 0x0e: // br_table
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x11, op == 0x13: // call_indirect return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			skipValType(r)
		}
	case op >= 0x28 && op <= 0x3e: // loads and stores
		skipMemArg(r)
	case op == 0x41:
		r.sleb(32)
	case op == 0x42:
		r.sleb(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null
		r.sleb(33)
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7: // saturating truncations
		case sub == 10: // memory.copy
			r.u32()
			r.u32()
		case sub == 11: // memory.fill
			r.u32()
		case sub == 16: // table.size
			r.u32()
		case sub == 8, sub == 9: // memory.init data.drop
			r.u32()
			if sub == 8 {
				r.u32()
			}
			if r.err != nil {
				return r.err
			}
			return &stateChangeError{[...]string{"memory.init", "data.drop"}[sub-8], "data segments"}
		case sub >= 12 && sub <= 17: // table.init elem.drop table.copy table.grow table.fill
			r.u32()
			if sub == 12 || sub == 14 {
				r.u32()
			}
			if r.err != nil {
				return r.err
			}
			return &stateChangeError{[...]string{"table.init", "elem.drop", "table.copy", "table.grow", "", "table.fill"}[sub-12], "a table"}
		default:
			return fmt.Errorf("unsupported instruction 0xfc %d", sub)
		}
	case op == 0x26: // table.set
		if r.u32(); r.err != nil {
			return r.err
		}
		return &stateChangeError{"table.set", "a table"}
	default:
		return fmt.Errorf("unsupported opcode %#x", op)
	}
	return r.err
}

// Encoding.

func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// WithCustomSection returns a copy of wasm with a custom section named
// name appended: the same code under a new hash, so that no cache holds
// it compiled yet (benchmarks of cold paths use it). The section holds one
// byte after its name: wazero, which runs _initialize (initrun.go),
// refuses a custom section with nothing after its name ("failed to read
// custom section name: EOF"), valid as that is, and Load would then fall
// back to compiling _initialize with Cranelift (~2 s of CPU for hello).
func WithCustomSection(wasm []byte, name string) []byte {
	return appendSection(bytes.Clone(wasm), 0, append(appendName(nil, name), 0))
}

func appendName(b []byte, s string) []byte {
	return append(appendULEB(b, uint64(len(s))), s...)
}

func appendSection(b []byte, id byte, body []byte) []byte {
	b = append(b, id)
	b = appendULEB(b, uint64(len(body)))
	return append(b, body...)
}

func encodeExports(exports []wasmExport) []byte {
	b := appendULEB(nil, uint64(len(exports)))
	for _, ex := range exports {
		b = appendName(b, ex.name)
		b = append(b, ex.kind)
		b = appendULEB(b, uint64(ex.idx))
	}
	return b
}

// encode writes the module back, with the sections in replace substituted
// (a nil body drops the section) and those in add inserted where the
// binary format orders them; stripNames drops data segment names.
func (m *wasmModule) encode(replace, add map[byte][]byte, stripNames bool) []byte {
	// Known sections appear in this order; custom sections may go anywhere.
	order := [...]byte{secType, secImport, secFunction, secTable, secMemory, secGlobal, secExport, secStart, secElement, secDataCount, secCode, secData}
	rank := func(id byte) int {
		for i, o := range order {
			if o == id {
				return i
			}
		}
		return -1
	}
	size := 8
	for _, s := range m.sections {
		size += len(s.body) + 6
	}
	out := make([]byte, 0, size+1024)
	out = append(out, "\x00asm\x01\x00\x00\x00"...)
	pending := maps.Clone(add)
	flush := func(before int) {
		for _, id := range order {
			if body, ok := pending[id]; ok && rank(id) < before {
				out = appendSection(out, id, body)
				delete(pending, id)
			}
		}
	}
	for _, s := range m.sections {
		if s.id != secCustom {
			flush(rank(s.id))
		}
		body, ok := replace[s.id]
		if !ok {
			body = s.body
			if s.id == secCustom && stripNames {
				body = stripDataNames(body)
			}
		} else if body == nil {
			continue
		}
		out = appendSection(out, s.id, body)
	}
	flush(len(order))
	return out
}

// stripDataNames removes the data segment names (subsection 9) from a name
// section: a snapshot renumbers the data segments. Other custom sections,
// and a name section that does not parse, are returned as they are;
// wasmtime reads names only for backtraces.
func stripDataNames(body []byte) []byte {
	r := &wasmReader{b: body}
	if r.name() != "name" || r.err != nil {
		return body
	}
	out := append([]byte(nil), body[:r.off]...)
	for !r.done() {
		id := r.byte()
		sub := r.bytes(r.u32())
		if r.err != nil {
			return body
		}
		if id != 9 {
			out = appendSection(out, id, sub)
		}
	}
	return out
}

// Pre-initialisation rewrites.

// globalExportPrefix names the exports instrumented() adds so the host can
// read every mutable global, exported or not, after _initialize; preinitExport
// marks a snapshot module. Both are reserved: a user's module that exports
// a name starting with reservedPrefix is refused (checkModule).
const (
	reservedPrefix     = "aerofn:"
	globalExportPrefix = reservedPrefix + "global:"
	preinitExport      = reservedPrefix + "preinit:"
	// resetExport marks a snapshot, or a module without _initialize
	// (compileResettable), that also exports every mutable global under
	// globalExportName, so the engine can put an instance back to its
	// initial state and run it again (reuse.go).
	resetExport = reservedPrefix + "reset"
)

func globalExportName(i int) string { return globalExportPrefix + strconv.Itoa(i) }

// beforeSnapshotExport is the optional export () -> () the engine calls
// once after _initialize when it builds a snapshot, and never otherwise
// (docs/ABI.md): work that readies the snapshot for calls and would be
// wasted in a call that runs _initialize itself. The Go SDK readies its
// allocator there (sdk/go/warm_wasip1.go).
const beforeSnapshotExport = "aerofn_before_snapshot"

// instrumented returns the module with every mutable global exported, the
// only change: the instance it makes behaves exactly like the original's.
func (m *wasmModule) instrumented() []byte { return m.instrumentedCapped(65536) }

// forInterpreter is instrumentedCapped without custom sections, the copy
// the interpreter runs _initialize on (initrun.go). Custom sections carry
// no semantics, and the interpreter refuses some that are valid (one with
// nothing after its name); Load would then fall back to compiling
// _initialize with Cranelift, about 2 s of CPU for a Go module.
func (m *wasmModule) forInterpreter(maxPages uint32) []byte {
	return m.instrumentedCappedExcept(maxPages, true)
}

// instrumentedCapped is instrumented with the memory's maximum at most
// maxPages (a memory without one keeps none): the instance it makes
// behaves exactly like the original's under a memory cap of maxPages,
// which is how pre-initialisation runs it.
func (m *wasmModule) instrumentedCapped(maxPages uint32) []byte {
	return m.instrumentedCappedExcept(maxPages, true)
}

func (m *wasmModule) instrumentedCappedExcept(maxPages uint32, dropCustom bool) []byte {
	exports := append([]wasmExport(nil), m.exports...)
	for i, g := range m.globals {
		if g.mutable {
			exports = append(exports, wasmExport{globalExportName(i), kindGlobal, uint32(i)})
		}
	}
	replace := map[byte][]byte{secExport: encodeExports(exports)}
	if m.memFlags == 1 && m.memMax > maxPages {
		mem := appendULEB(nil, 1)
		mem = append(mem, 1)
		mem = appendULEB(mem, uint64(m.memMin))
		replace[secMemory] = appendULEB(mem, uint64(maxPages))
	}
	if dropCustom {
		replace[secCustom] = nil // a nil body drops every section of the id
	}
	return m.encode(replace, nil, false)
}

// resettable returns the module with every mutable global exported and the
// resetExport mark added, nothing else changed (compileResettable).
func (m *wasmModule) resettable() []byte {
	exports := append([]wasmExport(nil), m.exports...)
	for i, g := range m.globals {
		if g.mutable {
			exports = append(exports, wasmExport{globalExportName(i), kindGlobal, uint32(i)})
		}
	}
	exports = append(exports, wasmExport{resetExport, kindMemory, 0})
	return m.encode(map[byte][]byte{secExport: encodeExports(exports)}, nil, false)
}

// checkTables refuses a table section the store limiter of a call would
// refuse at instantiation: more than maxTables tables, or one whose minimum
// is over maxTableElements. The interpreter that runs _initialize has no
// such limits, so they are checked here.
func (m *wasmModule) checkTables() error {
	body := m.section(secTable)
	if body == nil {
		return nil
	}
	r := &wasmReader{b: body}
	n := r.u32()
	if n > maxTables {
		return fmt.Errorf("%d tables, limit %d", n, maxTables)
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		skipValType(r)
		flags := r.byte()
		if flags > 1 && r.err == nil {
			return fmt.Errorf("table %d has limits flags %#x", i, flags)
		}
		if tmin := r.u32(); tmin > maxTableElements && r.err == nil {
			return fmt.Errorf("table %d has %d elements, limit %d", i, tmin, maxTableElements)
		}
		if flags == 1 {
			r.u32()
		}
	}
	return r.err
}

// snapshotValue is a mutable global's value after _initialize, as raw bits.
type snapshotValue = uint64

// snapshotModule builds the pre-initialised module: memory as it was after
// _initialize (its non-zero runs as active data segments, its size as the
// minimum), each mutable global initialised to its value then, no start
// function, and no _initialize export. The export preinitExport+<elapsed
// nanoseconds> records that the module is pre-initialised and how long
// initialisation took, which Run needs to continue the guest's clocks.
func (m *wasmModule) snapshotModule(mem []byte, globals map[int]snapshotValue, elapsed int64) ([]byte, error) {
	if len(mem)%wasmPage != 0 {
		return nil, fmt.Errorf("memory of %d bytes is not whole pages", len(mem))
	}
	pages := uint64(len(mem) / wasmPage)
	if m.memFlags == 1 && pages > uint64(m.memMax) {
		return nil, fmt.Errorf("memory of %d pages is over its maximum %d", pages, m.memMax)
	}
	memSec := appendULEB(nil, 1)
	memSec = append(memSec, m.memFlags)
	memSec = appendULEB(memSec, pages)
	if m.memFlags == 1 {
		memSec = appendULEB(memSec, uint64(m.memMax))
	}

	globSec := appendULEB(nil, uint64(len(m.globals)))
	for i, g := range m.globals {
		globSec = append(globSec, g.typ...)
		if !g.mutable {
			globSec = append(append(globSec, 0), g.init...)
			continue
		}
		v, ok := globals[i]
		if !ok {
			return nil, fmt.Errorf("no value for global %d", i)
		}
		globSec = append(globSec, 1)
		switch g.typ[0] {
		case valI32:
			globSec = appendSLEB(append(globSec, 0x41), int64(int32(uint32(v))))
		case valI64:
			globSec = appendSLEB(append(globSec, 0x42), int64(v))
		case valF32:
			globSec = binary.LittleEndian.AppendUint32(append(globSec, 0x43), uint32(v))
		case valF64:
			globSec = binary.LittleEndian.AppendUint64(append(globSec, 0x44), v)
		}
		globSec = append(globSec, 0x0b)
	}

	var exports []wasmExport
	for _, ex := range m.exports {
		if ex.name != "_initialize" {
			exports = append(exports, ex)
		}
	}
	exports = append(exports, wasmExport{preinitExport + strconv.FormatInt(elapsed, 10), kindMemory, 0})
	// Every mutable global, for the engine to reset between calls
	// (reuse.go), and the mark that says they are all there.
	for i, g := range m.globals {
		if g.mutable {
			exports = append(exports, wasmExport{globalExportName(i), kindGlobal, uint32(i)})
		}
	}
	exports = append(exports, wasmExport{resetExport, kindMemory, 0})

	segs := dataSegments(mem)
	if len(segs) > maxDataSegments {
		return nil, fmt.Errorf("memory has %d non-zero regions, over %d", len(segs), maxDataSegments)
	}
	data := appendULEB(nil, uint64(len(segs)))
	for _, s := range segs {
		data = append(data, 0, 0x41) // active, memory 0, offset i32.const
		data = appendSLEB(data, int64(int32(uint32(s[0]))))
		data = append(data, 0x0b)
		data = appendULEB(data, uint64(s[1]-s[0]))
		data = append(data, mem[s[0]:s[1]]...)
	}

	replace := map[byte][]byte{
		secMemory: memSec,
		secExport: encodeExports(exports),
		secStart:  nil,
		secData:   data,
	}
	add := map[byte][]byte{}
	if len(m.globals) > 0 {
		replace[secGlobal] = globSec
	}
	if m.section(secDataCount) != nil {
		replace[secDataCount] = appendULEB(nil, uint64(len(segs)))
	}
	if m.section(secData) == nil {
		add[secData] = data
	}
	return m.encode(replace, add, true), nil
}

// maxDataSegments stays well under wasmtime's limit of 100,000 data segments.
const maxDataSegments = 50_000

// dataSegments returns the [start, end) ranges of mem that hold non-zero
// bytes. Runs separated by fewer than dataGap zero bytes are joined (a
// segment header costs about as much), and the gap doubles until there are
// at most maxDataSegments.
func dataSegments(mem []byte) [][2]int {
	const dataGap = 32
	var runs [][2]int
	for i := 0; i < len(mem); {
		// Skip zeros a word at a time.
		for i+8 <= len(mem) && binary.LittleEndian.Uint64(mem[i:]) == 0 {
			i += 8
		}
		for i < len(mem) && mem[i] == 0 {
			i++
		}
		if i == len(mem) {
			break
		}
		start := i
		for i < len(mem) && mem[i] != 0 {
			i++
		}
		runs = append(runs, [2]int{start, i})
	}
	for gap := dataGap; ; gap *= 2 {
		var segs [][2]int
		for _, r := range runs {
			if n := len(segs); n > 0 && r[0]-segs[n-1][1] < gap {
				segs[n-1][1] = r[1]
			} else {
				segs = append(segs, r)
			}
		}
		if len(segs) <= maxDataSegments || gap > math.MaxInt32/2 {
			return segs
		}
	}
}

package engine

import (
	"bytes"
	"container/list"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Reusing instances of pre-initialised modules, and of modules without
// _initialize whose state is only their memory and globals
// (compileResettable): for those, "the snapshot" below is the state
// instantiation builds.
//
// Every call must start from the module's snapshot, with nothing left by the
// call before. The plain way is a new store and instance per call; dropping
// the store makes wasmtime reset the pool slot's memory, and without
// dirty-page tracking (which wasmtime-go's C API cannot turn on) that reset
// copies the whole image and zeroes the rest of the kept region: for a Go
// guest, about 3.4 MiB per call, of which a call writes some 35 pages.
//
// For a module that exports all its mutable globals (resetExport), the
// engine instead keeps the instance after a call that ended normally and
// puts it back into the snapshot's state itself:
//
//   - memory: the size must not have changed (memory cannot shrink; a call
//     that grew it ends the instance). The pages that are private to this
//     mapping, present or swapped out, are found with Linux's PAGEMAP_SCAN
//     ioctl and copied back from the module's initial memory, kept in
//     reuseImage.mem. Every other page still reads what the mapping below
//     holds: the image (mapped copy-on-write from the compiled artifact) or
//     zeros, which is the snapshot's content. Now and then
//     (reuseTrimEvery) a reset drops the private pages that already hold
//     the snapshot's content instead (trimPages), so that the resets in
//     between copy only what calls keep changing. A memory of one wasm
//     page is compared with the snapshot instead (compareReset). When the
//     private pages exceed reuseDirtyLimit and the mapping has been seen
//     to be the image (Module.imageMapped), they are dropped with
//     madvise(MADV_DONTNEED) instead, which brings the mapping's own
//     content back; otherwise the instance is ended. After a call whose
//     guest ran without its thread taking a page fault, no page became
//     private, and the reset copies back the pages the last scan found
//     without scanning again (warmInst.clean).
//   - globals: every mutable one is set back to its value in a fresh
//     instance, all in one crossing into C (resetglobals.go).
//   - tables and segments: a snapshot's code cannot change them (scanCode
//     refuses modules that could), so they are as instantiation built them.
//   - the store: its data (storeBox) points at the current call's state only
//     while the call runs; limits and the epoch callback are set per call.
//
// Anything else (a trap, a timeout, a host panic, proc_exit, a grown
// memory, a failed scan) ends the instance the plain way, and wasmtime
// resets its slot as before.

// storeBox is the data of a reusable instance's store: the call using it.
type storeBox struct{ st *callState }

// reuseDirtyLimit: above this many bytes of private pages, a reset drops
// them instead of copying them back.
var reuseDirtyLimit = 1 << 20 // a variable for tests

// reuseTrimEvery: the first two resets of an instance (for one primed at
// load, the priming's and its first call's), and two in every this many
// after them, trim its private pages (trimPages) instead of copying them
// all.
// reuseTrimMinPages: a trim that finds fewer unchanged pages than this
// drops none (they hold the snapshot's content already and stay private):
// dropping a page costs a madvise, with a TLB shootdown on every CPU the
// process runs on, and a page fault when a call writes the page again, far
// more than copying the page at the resets until the next trim.
var (
	reuseTrimEvery    = 1024 // variables for tests
	reuseTrimMinPages = 16
)

// reuseCheckKnown: a reset that skips the scan (warmInst.clean) scans
// anyway and panics when a private page lies outside the known ones. The
// engine's tests set it, so every test that reuses instances checks the
// claim the skip rests on.
var reuseCheckKnown = false

// checkKnown panics unless every private page of mem is in known.
func checkKnown(ps *pageScan, mem []byte, known [][2]int) {
	dirty, ok := ps.privatePages(mem, len(mem))
	if !ok {
		panic("engine: checking a reset without a scan: the scan failed")
	}
	for _, r := range dirty {
		for at := r[0]; at < r[1]; at += pageSize {
			if !slices.ContainsFunc(known, func(k [2]int) bool { return k[0] <= at && at < k[1] }) {
				panic(fmt.Sprintf("engine: page at %#x became private during a call that took no page fault", at))
			}
		}
	}
}

// reuseMaxCalls bounds the calls one instance serves, so nothing that
// wasmtime might accumulate per store over calls can grow without bound.
const reuseMaxCalls = 100_000

// reuseImage is a module's state at instantiation, shared by its reusable
// instances.
type reuseImage struct {
	mem    []byte
	values []wasmtime.Val // of the mutable globals, in moduleInfo.globals order
	live   int            // reusable instances of the module, idle or running
}

// warmInst is a reusable instance, between calls or in one.
type warmInst struct {
	mod     *Module
	img     *reuseImage
	store   *wasmtime.Store
	box     *storeBox
	inst    *wasmtime.Instance
	mem     *wasmtime.Memory
	handler *wasmtime.Func
	globals []*wasmtime.Global
	fast    *globalReset // nil: the reset uses wasmtime-go's methods
	calls   int
	scan    *pageScan
	// known is the instance's private pages as the last scan left them
	// (nil when no scan has, or when the one since did not copy them all
	// back: a trim drops some); clean is set when the guest of the call
	// just ended ran without the thread running it taking a page fault.
	// After a clean call the private pages are still known's, and the
	// reset copies those back without a scan (resetMemory).
	known [][2]int
	clean bool
	// noHuge: the memory is marked MADV_NOHUGEPAGE (adopt); only then is
	// known kept.
	noHuge bool
	// owner is the Limits.Owner of the calls the instance has served, once
	// served is set; an instance that has served none (primed at load) goes
	// to any.
	owner  string
	served bool
}

// reuseState is the engine's idle reusable instances and the images of the
// modules they belong to.
type reuseState struct {
	reuseMu   sync.Mutex
	idle      *list.List // of *warmInst, front = most recently used
	images    map[*Module]*reuseImage
	reused    uint64        // calls served by an existing instance
	trimmed   atomic.Uint64 // private pages dropped by trims (trimPages)
	unscanned atomic.Uint64 // resets that skipped the scan (warmInst.clean)
}

// reusable says whether m's calls may run on reused instances.
func (e *Engine) reusable(m *Module) bool {
	return e.slotsOf(m) != nil && !e.cfg.DisableReuse && m.info.resettable && pagemapFD() >= 0
}

// takeWarm takes an idle instance of m for a call of owner, or returns nil.
//
// A reset puts an instance's memory and globals back, but not which of its
// pages are present (those an earlier call read or wrote are, the others
// not yet) nor which of its table's entries wasmtime has filled in, and a
// call can time its first touch of each with the WASI clocks: a hostile
// module can carry bits from one call to the next that way. So an instance
// serves the calls of one owner only (the invoker's is the function), and
// two functions whose modules have the same bytes, and so share the
// Module, never share an instance. Within one function both calls run the
// same author's code, which could pass on what it saw by other means.
func (e *Engine) takeWarm(m *Module, owner string) *warmInst {
	e.reuseMu.Lock()
	defer e.reuseMu.Unlock()
	if e.idle == nil {
		return nil
	}
	for el := e.idle.Front(); el != nil; el = el.Next() {
		if w := el.Value.(*warmInst); w.mod == m && (w.owner == owner || !w.served) {
			e.idle.Remove(el)
			e.reused++
			w.owner, w.served = owner, true
			return w
		}
	}
	return nil
}

// adopt makes the fresh instance inst of m reusable, before its first call:
// it records the module's initial memory and globals if this is the first
// of its instances. It returns nil when the instance cannot be reused.
func (e *Engine) adopt(m *Module, store *wasmtime.Store, box *storeBox, inst *wasmtime.Instance, mem *wasmtime.Memory) *warmInst {
	if mem == nil || int64(mem.DataSize(store)) > e.cfg.KeepResident {
		return nil
	}
	w := &warmInst{mod: m, store: store, box: box, inst: inst, mem: mem, scan: newPageScan()}
	for _, name := range m.info.globals {
		ext := inst.GetExport(store, name)
		if ext == nil {
			return nil
		}
		g := ext.Global()
		ext.Close()
		if g == nil {
			return nil
		}
		w.globals = append(w.globals, g)
	}
	ext := inst.GetExport(store, "handler")
	if ext == nil {
		return nil
	}
	w.handler = ext.Func()
	ext.Close()

	data := mem.UnsafeData(store)
	// Without huge pages, a page of the memory becomes private only
	// through a page fault of the thread that writes it (warmInst.clean);
	// khugepaged could otherwise collapse a range of untouched pages into
	// a private huge page behind the guest's back.
	w.noHuge = len(data) > 0 && syscall.Madvise(data, syscall.MADV_NOHUGEPAGE) == nil
	e.reuseMu.Lock()
	defer e.reuseMu.Unlock()
	if e.images == nil {
		e.images = make(map[*Module]*reuseImage)
		e.idle = list.New()
	}
	img := e.images[m]
	cloned := false
	if img == nil {
		// A fresh instance holds the snapshot, whichever slot it is in.
		img = &reuseImage{mem: bytes.Clone(data)}
		for _, g := range w.globals {
			img.values = append(img.values, g.Get(store))
		}
		e.images[m] = img
		cloned = true
	} else if len(img.mem) != len(data) {
		return nil
	}
	if !m.imageMapped.Load() && w.scan.mappedFromFile(data) {
		m.imageMapped.Store(true)
	}
	if cloned && m.imageMapped.Load() {
		// Reading the whole memory for the image made every page of it
		// present in this instance's page tables, and each reset's scan
		// pays for every present page (it looks at each one's struct
		// page to tell the image's from private copies): 864 pages
		// instead of the hundred or so a call of a Go guest touches.
		// Nothing has written to the instance yet, so dropping the
		// pages brings back the same content (the image file below, or
		// zeros), and later calls fault in only what they touch.
		dropUntouched(w.scan, data)
	}
	img.live++
	w.img = img
	w.fast = newGlobalReset(mem, w.globals, img.values)
	return w
}

// finish ends a call on w: back to the idle list when keep and the reset
// succeeds, else the instance is ended (its store closed, its slot freed).
func (e *Engine) finish(w *warmInst, keep bool) {
	w.box.st = nil
	if keep && !w.mod.retired.Load() && w.calls < reuseMaxCalls && e.reset(w) {
		w.calls++
		e.reuseMu.Lock()
		// Checked again under the lock: swap marks a module retired
		// before it ends the module's idle instances under this lock, so
		// an instance is either seen retired here or ended there.
		if !e.closed.Load() && !w.mod.retired.Load() {
			e.idle.PushFront(w)
			var evict []*warmInst
			for e.idle.Len() > e.cfg.WarmSlots {
				evict = append(evict, e.idle.Remove(e.idle.Back()).(*warmInst))
			}
			e.reuseMu.Unlock()
			for _, v := range evict {
				e.end(v)
			}
			return
		}
		e.reuseMu.Unlock()
	}
	e.end(w)
}

// end closes w's store and frees its slot (in the cheap tier's pool for a
// cheap module).
func (e *Engine) end(w *warmInst) {
	w.store.Close()
	e.releaseSlotOf(w.mod)
	e.reuseMu.Lock()
	if w.img.live--; w.img.live == 0 && e.images[w.mod] == w.img {
		delete(e.images, w.mod)
	}
	e.reuseMu.Unlock()
}

// evictIdle ends the least recently used idle instance, so that its slot
// can serve another module; false when there is none.
func (e *Engine) evictIdle() bool { return e.evictIdleOf(nil) }

// evictIdleOf is evictIdle among the instances whose slot is in the pool
// m's calls take theirs from (the cheap tier has a pool of its own); nil:
// any.
func (e *Engine) evictIdleOf(m *Module) bool {
	e.reuseMu.Lock()
	var w *warmInst
	if e.idle != nil {
		for el := e.idle.Back(); el != nil; el = el.Prev() {
			if v := el.Value.(*warmInst); m == nil || (v.mod.tier == TierCheap) == (m.tier == TierCheap) {
				w = e.idle.Remove(el).(*warmInst)
				break
			}
		}
	}
	e.reuseMu.Unlock()
	if w == nil {
		return false
	}
	e.end(w)
	return true
}

// endIdle ends every idle instance (Stop).
func (e *Engine) endIdle() {
	for e.evictIdle() {
	}
}

// reset puts w's instance back into the snapshot's state; false when it
// cannot, and the instance must end.
func (e *Engine) reset(w *warmInst) bool {
	// The globals first when they take the same crossing into C as
	// finding the memory: nothing runs between the two steps, and a
	// failure of either ends the instance.
	var data []byte
	if w.fast != nil {
		d, ok := w.fast.reset(w.store)
		if !ok {
			return false
		}
		data = d
	} else {
		data = w.mem.UnsafeData(w.store)
	}
	if len(data) != len(w.img.mem) {
		return false
	}
	if !e.resetMemory(w, data) {
		return false
	}
	if w.fast == nil {
		for i, g := range w.globals {
			if g.Set(w.store, w.img.values[i]) != nil {
				return false
			}
		}
	}
	return true
}

// resetMemory puts data, w's memory, back into the snapshot's state: a
// one-page memory by comparison, a larger one by copying back (or, at a
// trim or when there are too many, dropping) the pages the kernel reports
// private. False when it cannot.
func (e *Engine) resetMemory(w *warmInst, data []byte) bool {
	if len(data) <= reuseCompareMax {
		compareReset(data, w.img.mem)
		return true
	}
	trim := w.calls%reuseTrimEvery <= 1 && w.mod.imageMapped.Load()
	clean := w.clean // said of the call just ended, by Run; used up here
	w.clean = false
	if clean && w.known != nil && !trim {
		if reuseCheckKnown {
			checkKnown(w.scan, data, w.known)
		}
		e.unscanned.Add(1)
		for _, r := range w.known {
			copy(data[r[0]:r[1]], w.img.mem[r[0]:r[1]])
		}
		return true
	}
	w.known = nil
	dirty, ok := w.scan.privatePages(data, reuseDirtyLimit)
	switch {
	case ok && trim:
		e.trimmed.Add(uint64(trimPages(data, w.img.mem, dirty, reuseTrimMinPages)))
	case ok:
		for _, r := range dirty {
			copy(data[r[0]:r[1]], w.img.mem[r[0]:r[1]])
		}
		if w.noHuge {
			w.known = dirty
		}
	case w.mod.imageMapped.Load() && len(data) > 0:
		return madviseDontNeed(data) == nil
	default:
		return false
	}
	return true
}

// Linux's PAGEMAP_SCAN (linux/fs.h, since 6.7).
const (
	pageIsFile    = 1 << 2
	pageIsPresent = 1 << 3
	pageIsSwapped = 1 << 4
	pageIsPFNZero = 1 << 5

	// _IOWR('f', 16, struct pm_scan_arg)
	pagemapScan = 3<<30 | uint64(unsafe.Sizeof(pmScanArg{}))<<16 | 'f'<<8 | 16
)

type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages       uint64
	categoryInverted, categoryMask, categoryAnyofMask, returnMask uint64
}

type pageRegion struct{ start, end, categories uint64 }

var pagemap struct {
	once sync.Once
	fd   int
}

// pagemapFD is /proc/self/pagemap opened for PAGEMAP_SCAN, or -1 where
// the file or the ioctl is missing (instances are then not reused).
func pagemapFD() int {
	pagemap.once.Do(func() {
		pagemap.fd = -1
		f, err := os.Open("/proc/self/pagemap")
		if err != nil {
			return
		}
		fd, err := syscall.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			return
		}
		syscall.CloseOnExec(fd)
		// An empty range, as wasmtime probes it: fails where the ioctl is
		// unknown.
		a := &pmScanArg{size: uint64(unsafe.Sizeof(pmScanArg{}))}
		if _, err := scanFrom(fd, a); err != nil {
			syscall.Close(fd)
			return
		}
		pagemap.fd = fd
	})
	return pagemap.fd
}

// pageScan holds the regions PAGEMAP_SCAN writes. It is always allocated
// on the heap (newPageScan), never on a goroutine stack, which may move.
type pageScan struct{ regions [64]pageRegion }

//go:noinline
func newPageScan() *pageScan { return new(pageScan) }

func scanFrom(fd int, a *pmScanArg) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(pagemapScan), uintptr(unsafe.Pointer(a)))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// scan runs PAGEMAP_SCAN over mem (memory not managed by Go: a linear
// memory) from offset from, for pages whose categories, after flipping
// those in inverted, include all of mask and any of anyof. It returns the
// regions found, as offsets in mem, and the offset where the walk stopped.
func (ps *pageScan) scan(mem []byte, from int, mask, inverted, anyof uint64) (regions [][2]int, walkEnd int, err error) {
	fd := pagemapFD()
	if fd < 0 {
		return nil, 0, syscall.ENOTSUP
	}
	base := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem))))
	a := &pmScanArg{
		size: uint64(unsafe.Sizeof(pmScanArg{})), start: base + uint64(from), end: base + uint64(len(mem)),
		vec: uint64(uintptr(unsafe.Pointer(&ps.regions[0]))), vecLen: uint64(len(ps.regions)),
		categoryInverted: inverted, categoryMask: mask, categoryAnyofMask: anyof,
	}
	n, err := scanFrom(fd, a)
	if err != nil {
		return nil, 0, err
	}
	if a.walkEnd <= a.start || a.walkEnd > a.end || n > len(ps.regions) {
		return nil, 0, syscall.EIO
	}
	for _, r := range ps.regions[:n] {
		if r.start < a.start || r.end > a.walkEnd || r.start >= r.end {
			return nil, 0, syscall.EIO
		}
		regions = append(regions, [2]int{int(r.start - base), int(r.end - base)})
	}
	return regions, int(a.walkEnd - base), nil
}

// privatePages returns the [start, end) offsets in mem of the pages that
// hold a private copy (written since they were mapped; present or swapped
// out; not the shared zero page, not a page of the mapped file). Those are
// the only pages whose content may differ from what the mapping below them
// holds. ok is false when they exceed limit bytes or the scan fails.
func (ps *pageScan) privatePages(mem []byte, limit int) (dirty [][2]int, ok bool) {
	total := 0
	for from := 0; from < len(mem); {
		regions, end, err := ps.scan(mem, from, pageIsFile|pageIsPFNZero, pageIsFile|pageIsPFNZero, pageIsPresent|pageIsSwapped)
		if err != nil {
			return nil, false
		}
		for _, r := range regions {
			total += r[1] - r[0]
		}
		if total > limit {
			return nil, false
		}
		dirty = append(dirty, regions...)
		from = end
	}
	return dirty, true
}

// mappedFromFile reports whether some page of mem is a present page of a
// mapped file: wasmtime maps a module's image copy-on-write or not at all,
// so then the mapping below the memory is the image and dropping private
// pages restores it.
func (ps *pageScan) mappedFromFile(mem []byte) bool {
	for from := 0; from < len(mem); {
		regions, end, err := ps.scan(mem, from, pageIsFile|pageIsPresent, 0, 0)
		if err != nil {
			return false
		}
		if len(regions) > 0 {
			return true
		}
		from = end
	}
	return false
}

// dropUntouched drops the pages of mem, a fresh instance's memory mapped
// from its image, that hold no private copy: they read what the mapping
// below holds (the image file or zeros) whether present or not, so
// dropping them changes nothing but what the next scans walk. Private
// pages stay as they are: a fresh instance can have some (wasmtime's pool
// zeroes the part of a reused slot it keeps resident, and those zeroed
// pages are private), and their content is the snapshot's too.
func dropUntouched(ps *pageScan, mem []byte) {
	dirty, ok := ps.privatePages(mem, len(mem))
	if !ok {
		return
	}
	from := 0
	for _, r := range append(dirty, [2]int{len(mem), len(mem)}) {
		if r[0] > from {
			_ = madviseDontNeed(mem[from:r[0]])
		}
		from = r[1]
	}
}

// trimPages puts the private pages of mem (dirty, from privatePages) back
// into the snapshot's state, img, as a reset's copy does, except that the
// pages that already hold the snapshot's content are dropped
// (MADV_DONTNEED) rather than left private, when there are at least
// minDrop of them: a dropped page reads what the mapping below holds, the
// image file or zeros, and it is no longer private, so the resets that
// follow neither find nor copy it until a call writes it again. It
// returns how many pages it dropped.
//
// That the mapping below holds the snapshot's content is what the reset's
// other drops (too many private pages) and dropUntouched rely on too: the
// caller checks Module.imageMapped, set once a page of an instance was
// seen mapped from the image file; wasmtime then maps the image
// copy-on-write at every instantiation, over anonymous zeros, and the
// snapshot (reuseImage.mem) is a fresh instance's memory.
//
// Most private pages of a reused instance are such pages: wasmtime's pool
// zeroes the part of a slot it keeps resident, and a guest's calls write
// pages with the content they held (a runtime zeroing memory that is
// already zero) and, from call to call, not always the same pages, so the
// private set grows to their union; every reset used to copy each of them
// back (docs/RATIONALE.md, "Trimming a reused instance's pages").
func trimPages(mem, img []byte, dirty [][2]int, minDrop int) (dropped int) {
	var same [][2]int // runs of unchanged pages, in order
	for _, r := range dirty {
		from := r[0] // start of the current run of unchanged pages
		for at := r[0]; at < r[1]; at += pageSize {
			end := min(at+pageSize, r[1])
			if bytes.Equal(mem[at:end], img[at:end]) {
				continue
			}
			if from < at {
				same = append(same, [2]int{from, at})
			}
			copy(mem[at:end], img[at:end])
			from = end
		}
		if from < r[1] {
			same = append(same, [2]int{from, r[1]})
		}
	}
	n := 0
	for _, r := range same {
		n += (r[1] - r[0]) / pageSize
	}
	if n < minDrop {
		return 0 // they hold the snapshot's content already
	}
	for _, r := range same {
		if madviseDontNeed(mem[r[0]:r[1]]) != nil {
			continue // still private, still the snapshot's content
		}
		dropped += (r[1] - r[0]) / pageSize
	}
	return dropped
}

// reuseCompareMax: a memory of at most this many bytes is reset by
// comparing it with the snapshot, page by page, instead of asking the
// kernel which pages are private (compareReset).
var reuseCompareMax = 64 << 10 // a variable for tests

// compareReset puts mem back into the snapshot's state, img, by comparing
// every page with img and copying the ones that differ. For a small memory
// (reuseCompareMax: one wasm page, the usual size of a hand-written or WAT
// module) this costs less than the PAGEMAP_SCAN it replaces, a system
// call that was 5 % of the WAT echo's CPU per call in the server under
// load (docs/RATIONALE.md, "Small memories are compared, not scanned"),
// and it does not depend on how the memory is mapped: afterwards mem
// holds img byte for byte. Reading a page the calls never touched faults
// it in once; every page of the memory is then present.
func compareReset(mem, img []byte) {
	for at := 0; at < len(mem); at += pageSize {
		end := min(at+pageSize, len(mem))
		if !bytes.Equal(mem[at:end], img[at:end]) {
			copy(mem[at:end], img[at:end])
		}
	}
}

// pageSize is the size of the pages PAGEMAP_SCAN reports.
var pageSize = os.Getpagesize()

func madviseDontNeed(b []byte) error {
	return syscall.Madvise(b, syscall.MADV_DONTNEED)
}

package engine

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
)

// reuseScribbleStores is the part of reuseScribbleWAT's handler that
// writes, after the sum; the tests below replace it with writes of their
// own.
const reuseScribbleStores = `    ;; Scribble: fill a whole MiB, then one store in every page.
    (memory.fill (i32.const 3145728) (i32.const 0xAB) (i32.const 1048576))
    (local.set $a (i32.const 0))
    (loop $l
      (i32.store (i32.add (local.get $a) (i32.const 100)) (i32.xor (local.get $a) (i32.const -1)))
      (local.set $a (i32.add (local.get $a) (i32.const 4096)))
      (br_if $l (i32.lt_u (local.get $a) (local.get $end))))`

// reuseTrimWAT is reuseScribbleWAT with a call that writes some pages with
// the content they already hold (a page of the image copied onto itself,
// the word _initialize stored, zeros over zeros) and others with new
// content, the mix a trim sorts into pages to drop and pages to copy.
var reuseTrimWAT = strings.Replace(reuseScribbleWAT, reuseScribbleStores, `    ;; Unchanged: the image's page, _initialize's word, zeros.
    (memory.copy (i32.const 65536) (i32.const 65536) (i32.const 4096))
    (i32.store (i32.const 1048576) (i32.const 0x12345678))
    (memory.fill (i32.const 2097152) (i32.const 7) (i32.const 8192))
    (memory.fill (i32.const 3145728) (i32.const 0) (i32.const 65536))
    ;; Changed: a byte of the image, of the 7s, of the zeros, and the
    ;; pages next to the unchanged ones.
    (i32.store8 (i32.const 65537) (i32.const 0x21))
    (i32.store8 (i32.const 69632) (i32.const 1))
    (i32.store (i32.const 2101248) (i32.const 9))
    (memory.fill (i32.const 3211264) (i32.const 0xAB) (i32.const 4096))
    (i32.store (i32.const 3141632) (i32.const 5))`, 1)

// A reset that trims (every reset here, and the first of each instance by
// default) drops the private pages that hold the snapshot's content and
// copies back the others: every call still starts from the snapshot, and
// pages were dropped. For a module with _initialize and one without.
func TestReuseTrim(t *testing.T) {
	if pagemapFD() < 0 {
		t.Fatal("PAGEMAP_SCAN is not available on this kernel: instances are never reused here")
	}
	if reuseTrimWAT == reuseScribbleWAT {
		t.Fatal("the scribbling part of reuseScribbleWAT changed: update reuseTrimWAT")
	}
	plainWAT := strings.Replace(reuseTrimWAT, `(func (export "_initialize")`, `(func $unused`, 1)
	// Every reset trims, and none drops all its private pages for having
	// too many (wasmtime's pool keeps zeroed pages of a slot resident, and
	// those are private).
	oldEvery, oldMin, oldLimit := reuseTrimEvery, reuseTrimMinPages, reuseDirtyLimit
	reuseTrimEvery, reuseTrimMinPages, reuseDirtyLimit = 1, 1, 1<<30
	t.Cleanup(func() { reuseTrimEvery, reuseTrimMinPages, reuseDirtyLimit = oldEvery, oldMin, oldLimit })
	// Each call leaves at least 18 pages of a snapshot's memory
	// unchanged: _initialize's word's, one of the 7s and the 16 of zeros.
	// Without _initialize the word and the 7s are not in the state a call
	// starts from, so writing them changes their pages: 16.
	for kind, tc := range map[string]struct {
		src       string
		unchanged uint64
	}{"snapshot": {reuseTrimWAT, 18}, "plain": {plainWAT, 16}} {
		src := tc.src
		t.Run(kind, func(t *testing.T) {
			fresh := newEngine(t, Config{PoolSlots: 1, DisableReuse: true})
			want := string(run(t, fresh, loadWAT(t, fresh, "trim", src), "", Limits{}, nil).Output)
			if len(want) != 8 {
				t.Fatalf("fresh instance output %q", want)
			}
			e := newEngine(t, Config{PoolSlots: 1})
			m := loadWAT(t, e, "trim", src)
			if !m.imageMapped.Load() {
				t.Skip("the image is not mapped from the compiled artifact here: resets never trim")
			}
			loaded := e.Stats().TrimmedPages // the priming's reset trims too
			const calls = 6
			runSums(t, e, m, calls, want)
			st := e.Stats()
			if st.Reused != calls {
				t.Fatalf("%d of %d calls reused an instance: the test did not exercise reuse", st.Reused, calls)
			}
			if n := st.TrimmedPages - loaded; n < calls*tc.unchanged {
				t.Fatalf("%d pages trimmed over %d calls' resets, want at least %d each", n, calls, tc.unchanged)
			}
		})
	}
}

// trimPages on anonymous memory, where a dropped page reads zeros: with
// fewer unchanged pages than asked for, none is dropped; otherwise the
// unchanged pages are dropped and the changed ones copied back; either way
// the memory then holds the image.
func TestTrimPages(t *testing.T) {
	ps := pageSize
	mem, err := syscall.Mmap(-1, 0, 8*ps, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	img := make([]byte, 8*ps)
	img[1*ps+3] = 9 // the image's one non-zero byte; its page is never dropped here
	scribble := func() {
		for i := range 8 {
			mem[i*ps] = 0 // every page private (written)
		}
		mem[1*ps+3] = 0 // changed (a dropped page here would read 0, not 9)
		mem[2*ps+5] = 3

		mem[5*ps+7] = 4
	}
	scribble()
	if n := trimPages(mem, img, [][2]int{{0, 8 * ps}}, 6); n != 0 {
		t.Fatalf("dropped %d pages of 5 unchanged with 6 asked for; want none", n)
	}
	if !bytes.Equal(mem, img) {
		t.Fatal("memory differs from the image after the trim")
	}
	scribble()
	if n := trimPages(mem, img, [][2]int{{0, 8 * ps}}, 5); n != 5 {
		t.Fatalf("dropped %d pages; want the 5 unchanged", n)
	}
	if !bytes.Equal(mem, img) {
		t.Fatal("memory differs from the image after the trim")
	}
	// Only the pages in the regions given are looked at.
	scribble()
	if n := trimPages(mem, img, [][2]int{{0, 4 * ps}, {6 * ps, 8 * ps}}, 1); n != 4 {
		t.Fatalf("dropped %d pages; want 4: 0, 3, 6 and 7", n)
	}
	if mem[5*ps+7] != 4 {
		t.Fatal("a page outside the regions given was changed")
	}
}

package engine

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// reusePageWAT is reuseScribbleWAT (it sums its whole memory, 4 MiB,
// into its output) writing, instead of scribbling, a word into the page
// whose number is the input's first four bytes, little-endian: a call
// that writes a page no call wrote before makes it private (the thread
// faults); one that writes the same page as the calls before writes a page
// that is private already (no fault). reusePageStore is that write.
var reusePageWAT = strings.Replace(strings.Replace(reuseScribbleWAT, reuseScribbleStores,
	"    (drop (call $input_read (i32.const 16) (i32.const 4)))\n"+reusePageStore, 1),
	`(import "aerodb" "output"`, `(import "aerodb" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "aerodb" "output"`, 1)

const reusePageStore = `    (i32.store (i32.add (i32.mul (i32.load (i32.const 16)) (i32.const 4096)) (i32.const 40)) (i32.const 0x5a5a5a5a))`

// pageInput is reusePageWAT's input that writes page n.
func pageInput(n int) string { return string([]byte{byte(n), byte(n >> 8), 0, 0}) }

// A reset after a call whose thread took no page fault copies back the
// private pages the last scan found, without scanning (warmInst.clean):
// a call that writes a page no call wrote before must still leave nothing
// behind, because making the page private faulted; and the calls that
// only write pages private already are reset by the copy alone.
func TestReuseUnscanned(t *testing.T) {
	if pagemapFD() < 0 {
		t.Fatal("PAGEMAP_SCAN is not available on this kernel: instances are never reused here")
	}
	plainWAT := strings.Replace(reusePageWAT, `(func (export "_initialize")`, `(func $unused`, 1)
	for kind, src := range map[string]string{"snapshot": reusePageWAT, "plain": plainWAT} {
		fresh := newEngine(t, Config{PoolSlots: 1, DisableReuse: true})
		want := string(run(t, fresh, loadWAT(t, fresh, "pages", src), pageInput(100), Limits{}, nil).Output)
		if len(want) != 8 {
			t.Fatalf("%s: fresh instance output %q", kind, want)
		}
		sums := func(t *testing.T, e *Engine, m *Module, page func(i int) int, calls int) {
			t.Helper()
			for i := range calls {
				res := run(t, e, m, pageInput(page(i)), Limits{}, nil)
				wantStatus(t, res, StatusSuccess)
				if got := string(res.Output); got != want {
					t.Fatalf("call %d summed %s, a fresh instance %s: state crossed calls", i, got, want)
				}
			}
		}
		// Every call writes a page of its own: each one faults, and each
		// reset scans. By a store, and by the host: random_get fills the
		// page in a Go host function, whose writes fault on the guest's
		// thread as the guest's own do.
		hostSrc := strings.Replace(src, reusePageStore,
			`    (drop (call $random (i32.add (i32.mul (i32.load (i32.const 16)) (i32.const 4096)) (i32.const 40)) (i32.const 64)))`, 1)
		hostSrc = strings.Replace(hostSrc, `(import "aerodb" "output"`, `(import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "aerodb" "output"`, 1)
		for name, src := range map[string]string{"new pages": src, "new pages by the host": hostSrc} {
			t.Run(kind+"/"+name, func(t *testing.T) {
				if !strings.Contains(src, "input_read") || strings.Contains(src, "Scribble") ||
					(name != "new pages" && !strings.Contains(src, "call $random")) {
					t.Fatal("reuseScribbleWAT changed: update reusePageWAT")
				}
				e := newEngine(t, Config{PoolSlots: 1})
				m := loadWAT(t, e, "pages", src)
				const calls = 24
				sums(t, e, m, func(i int) int { return 100 + 7*i }, calls)
				if st := e.Stats(); st.Reused != calls {
					t.Fatalf("%d of %d calls reused an instance: the test did not exercise reuse", st.Reused, calls)
				}
			})
		}
		// Every call writes the same page: once the first calls have
		// made every page they touch present, the resets skip the scan,
		// and still each call starts from the snapshot.
		t.Run(kind+"/same page", func(t *testing.T) {
			e := newEngine(t, Config{PoolSlots: 1})
			m := loadWAT(t, e, "pages", src)
			const calls = 24
			sums(t, e, m, func(int) int { return 300 }, calls)
			st := e.Stats()
			if st.Reused != calls {
				t.Fatalf("%d of %d calls reused an instance: the test did not exercise reuse", st.Reused, calls)
			}
			// The priming's reset and the first two calls' trim; the call
			// after the trims faults the dropped pages back in.
			if st.UnscannedResets < calls-4 {
				t.Fatalf("%d of %d resets skipped the scan, want at least %d", st.UnscannedResets, calls, calls-4)
			}
			// Then a call that writes new pages again.
			sums(t, e, m, func(i int) int { return 400 + i }, 4)
		})
	}
}

// A reused instance's memory is marked MADV_NOHUGEPAGE: khugepaged could
// otherwise collapse untouched pages into a private huge page, which no
// fault of the guest's thread would announce (warmInst.clean).
func TestReuseNoHugePages(t *testing.T) {
	if pagemapFD() < 0 {
		t.Fatal("PAGEMAP_SCAN is not available on this kernel: instances are never reused here")
	}
	e := newEngine(t, Config{PoolSlots: 1})
	m := loadWAT(t, e, "pages", reusePageWAT)
	run(t, e, m, pageInput(1), Limits{}, nil)
	e.reuseMu.Lock()
	var w *warmInst
	if e.idle != nil && e.idle.Len() > 0 {
		w = e.idle.Front().Value.(*warmInst)
	}
	e.reuseMu.Unlock()
	if w == nil {
		t.Fatal("no idle instance after a call: the test did not exercise reuse")
	}
	if !w.noHuge {
		t.Fatal("the instance's memory is not marked MADV_NOHUGEPAGE")
	}
	data := w.mem.UnsafeData(w.store)
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	base := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(data))))
	n, err := vmasWithout(string(smaps), base, base+uint64(len(data)), "nh")
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d mappings of the instance's memory lack the nh flag in /proc/self/smaps", n)
	}
}

// vmasWithout counts the mappings in smaps that overlap [start, end) and
// whose VmFlags lack flag; an error when none overlaps.
func vmasWithout(smaps string, start, end uint64, flag string) (int, error) {
	overlapping, without := 0, 0
	in := false
	for _, line := range strings.Split(smaps, "\n") {
		var lo, hi uint64
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			if _, err := fmt.Sscanf(f[0], "%x-%x", &lo, &hi); err == nil {
				in = lo < end && hi > start
				if in {
					overlapping++
				}
				continue
			}
		}
		if in && strings.HasPrefix(line, "VmFlags:") && !slices.Contains(strings.Fields(line)[1:], flag) {
			without++
		}
	}
	if overlapping == 0 {
		return 0, fmt.Errorf("no mapping overlaps %#x-%#x", start, end)
	}
	return without, nil
}

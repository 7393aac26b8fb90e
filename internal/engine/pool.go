package engine

/*
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

// Declared here rather than included, as in interrupt.go. wasmtime-go does
// not wrap the pooling allocator; these are its C API (wasmtime/config.h).
typedef struct wasm_config_t wasm_config_t;
typedef struct wasmtime_pooling_allocation_config_t wasmtime_pooling_allocation_config_t;
extern wasmtime_pooling_allocation_config_t *wasmtime_pooling_allocation_config_new(void);
extern void wasmtime_pooling_allocation_config_delete(wasmtime_pooling_allocation_config_t *);
extern void wasmtime_pooling_allocation_config_max_unused_warm_slots_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_table_keep_resident_set(wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_total_memories_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_total_tables_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_total_stacks_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_total_core_instances_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_max_core_instance_size_set(wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_max_tables_per_module_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_table_elements_set(wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_max_memories_per_module_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_max_memory_size_set(wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_strategy_set(wasm_config_t *, const wasmtime_pooling_allocation_config_t *);
extern void wasmtime_config_memory_reservation_set(wasm_config_t *, uint64_t);
extern void wasmtime_config_memory_guard_size_set(wasm_config_t *, uint64_t);
extern void wasmtime_config_memory_reservation_for_growth_set(wasm_config_t *, uint64_t);

typedef struct {
	uint32_t slots, warm_slots, max_tables, max_memories;
	size_t keep_resident, table_keep_resident, max_memory, table_elements, instance_size;
	uint64_t reservation, guard;
} aerofn_pool;

static void aerofn_pool_apply(void *cfg, aerofn_pool p) {
	wasm_config_t *c = cfg;
	wasmtime_pooling_allocation_config_t *pc = wasmtime_pooling_allocation_config_new();
	wasmtime_pooling_allocation_config_total_core_instances_set(pc, p.slots);
	wasmtime_pooling_allocation_config_total_memories_set(pc, p.slots * p.max_memories);
	wasmtime_pooling_allocation_config_total_tables_set(pc, p.slots * p.max_tables);
	wasmtime_pooling_allocation_config_total_stacks_set(pc, 1);
	wasmtime_pooling_allocation_config_max_unused_warm_slots_set(pc, p.warm_slots);
	wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pc, p.keep_resident);
	wasmtime_pooling_allocation_config_table_keep_resident_set(pc, p.table_keep_resident);
	wasmtime_pooling_allocation_config_max_memory_size_set(pc, p.max_memory);
	wasmtime_pooling_allocation_config_max_memories_per_module_set(pc, p.max_memories);
	wasmtime_pooling_allocation_config_max_tables_per_module_set(pc, p.max_tables);
	wasmtime_pooling_allocation_config_table_elements_set(pc, p.table_elements);
	wasmtime_pooling_allocation_config_max_core_instance_size_set(pc, p.instance_size);
	wasmtime_pooling_allocation_strategy_set(c, pc);
	wasmtime_pooling_allocation_config_delete(pc);
	wasmtime_config_memory_reservation_set(c, p.reservation);
	wasmtime_config_memory_reservation_for_growth_set(c, 0);
	wasmtime_config_memory_guard_size_set(c, p.guard);
}

static void aerofn_set_reservation(void *cfg, uint64_t reservation, uint64_t guard) {
	wasmtime_config_memory_reservation_set(cfg, reservation);
	wasmtime_config_memory_guard_size_set(cfg, guard);
}

extern void wasmtime_config_parallel_compilation_set(wasm_config_t *, bool);
static void aerofn_set_parallel(void *cfg, bool on) { wasmtime_config_parallel_compilation_set(cfg, on); }
*/
import "C"

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// ErrPoolExhausted is carried by Result.Err (status error) when every
// instance slot of the engine's pool is in use, so the call did not start.
// A caller that admits at most Config.PoolSlots calls at once never sees it.
var ErrPoolExhausted = errors.New("instance pool exhausted: too many calls running at once")

// Pool defaults (see docs/RATIONALE.md, "Instance pool").
const (
	// DefaultPoolSlots: instances that may exist at once in an engine built
	// without a PoolSlots (tests, tools). The server passes its
	// AEROFN_MAX_CONCURRENCY.
	DefaultPoolSlots = 64
	// DefaultMaxMemoryBytes is the largest linear memory a pool slot holds:
	// the registry's maximum memory_mb (512).
	DefaultMaxMemoryBytes = 512 << 20
	// DefaultKeepResident is how much of a slot's linear memory stays mapped
	// and resident between calls (reset in place instead of unmapped).
	DefaultKeepResident = 16 << 20
	// DefaultTableKeepResident is the same for tables.
	DefaultTableKeepResident = 1 << 20
	// DefaultWarmSlots bounds the slots that are free but keep a module's
	// memory resident for its next call.
	DefaultWarmSlots = 16

	memoryGuard  = 64 << 10
	instanceSize = 1 << 20 // VMContext bytes per instance; wasmtime's default
)

// Large reservations (Config.ElideBoundsChecks). With a memory's
// reservation covering its whole 32-bit index space and a guard covering
// any static offset Cranelift folds into an address, every access either
// lands in the memory or faults in the reservation or guard, which
// wasmtime turns into a trap: Cranelift then emits no bounds check (and no
// Spectre guard, which only exists to harden a bounds check).
const (
	largeReservation = 4 << 30  // wasmtime's default on 64-bit hosts
	largeGuard       = 32 << 20 // likewise; also placed before each memory
)

// LargeReservationBudget bounds the address space the large reservations
// of all the engines of a process take together: half of the 128 TiB of
// x86-64's user space, since wasmtime aborts the process when a pool's
// reservation fails. An engine beyond it gets the small reservation. A
// process whose address space is limited (RLIMIT_AS) gets half its limit.
const LargeReservationBudget = 64 << 40

// largeReserved is the address space the live engines' large
// reservations hold.
var largeReserved atomic.Int64

// largeBudget is LargeReservationBudget, or half the process's address
// space limit (RLIMIT_AS, `ulimit -v`) when that is lower.
var largeBudget = sync.OnceValue(func() int64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		return LargeReservationBudget
	}
	return budgetUnder(lim.Cur)
})

const rlimInfinity = ^uint64(0) // RLIM_INFINITY as Getrlimit returns it

// budgetUnder is the large reservations' budget under an address space
// limit (RLIM_INFINITY: none).
func budgetUnder(limit uint64) int64 {
	if limit == rlimInfinity || limit/2 >= LargeReservationBudget {
		return LargeReservationBudget
	}
	return int64(limit / 2)
}

// takeLargeReservation takes a pool of slots' large reservation from the
// budget: the bytes taken, or 0 when they would not fit.
func takeLargeReservation(slots int) int64 {
	need := int64(slots) * maxMemories * (largeReservation + 2*largeGuard)
	if largeReserved.Add(need) > largeBudget() {
		largeReserved.Add(-need)
		return 0
	}
	return need
}

// configPtrField finds wasmtime.Config's C pointer, as interrupt.go finds the
// store's: wasmtime-go does not expose it, nor the pooling allocator.
var configPtrField, poolSupported = func() ([]int, bool) {
	f, ok := reflect.TypeOf(wasmtime.Config{}).FieldByName("_ptr")
	return f.Index, ok && f.Type.Kind() == reflect.Pointer
}()

// applyPool switches wcfg to the pooling allocator sized by cfg. It reports
// false, changing nothing, when the config's pointer cannot be reached.
//
// large reserves largeReservation + largeGuard per memory instead of
// MaxMemoryBytes + memoryGuard (Config.ElideBoundsChecks).
func applyPool(wcfg *wasmtime.Config, cfg Config, large bool) bool {
	if !poolSupported {
		return false
	}
	p := reflect.ValueOf(wcfg).Elem().FieldByIndex(configPtrField).UnsafePointer()
	if p == nil {
		return false
	}
	reservation, guard := uint64(cfg.MaxMemoryBytes), uint64(memoryGuard)
	if large {
		reservation, guard = largeReservation, largeGuard
	}
	C.aerofn_pool_apply(p, C.aerofn_pool{
		slots:               C.uint32_t(cfg.PoolSlots),
		warm_slots:          C.uint32_t(cfg.WarmSlots),
		max_tables:          C.uint32_t(maxTables),
		max_memories:        C.uint32_t(maxMemories),
		keep_resident:       C.size_t(max(cfg.KeepResident, 0)),
		table_keep_resident: C.size_t(max(cfg.TableKeepResident, 0)),
		max_memory:          C.size_t(cfg.MaxMemoryBytes),
		table_elements:      C.size_t(maxTableElements),
		instance_size:       C.size_t(instanceSize),
		reservation:         C.uint64_t(reservation),
		guard:               C.uint64_t(guard),
	})
	return true
}

// acquireSlotOf takes an instance slot for a call of m, in the pool m's
// calls run in (the cheap tier's for a cheap module, tier.go); false when
// all are in use. With pooling off there is no bound here (the caller's
// admission is the only one).
func (e *Engine) acquireSlotOf(m *Module) bool { return acquire(e.slotsOf(m)) }

// releaseSlotOf returns a slot after the store holding it has been closed.
func (e *Engine) releaseSlotOf(m *Module) { release(e.slotsOf(m)) }

func acquire(slots chan struct{}) bool {
	if slots == nil {
		return true
	}
	select {
	case slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func release(slots chan struct{}) {
	if slots != nil {
		<-slots
	}
}

// The run gate bounds the calls executing guest code at once
// (Config.MaxRunning). A call waits for a token before its instance is
// created and gives it back after the instance is gone; while it is blocked
// in the host (db_query, http_fetch, a sleep in poll_oneoff) it lends its
// token to the next call. So a node admitting hundreds of calls runs only a
// few instances on its cores at a time, each on a warm pool slot, instead of
// hundreds of OS threads faulting in hundreds of slots' memory; and calls
// that wait on I/O still overlap without bound.

// enterRun waits for a run token until the call's deadline or the end of
// ctx; the error says which (nil: the call holds a token).
func (e *Engine) enterRun(ctx context.Context, deadline time.Time) error {
	select {
	case e.running <- struct{}{}:
		e.gateWaits.add(0)
		return nil
	default:
	}
	t0 := time.Now()
	defer func() { e.gateWaits.add(time.Since(t0)) }()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case e.running <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return context.DeadlineExceeded
	}
}

// gateBounds are the upper bounds of the buckets of GateWaits; the first,
// 0, counts the calls that found a token free.
var gateBounds = []time.Duration{0, 100 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	200 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second}

// gateHist counts the run gate's waits; lock-free, two atomic adds a call.
type gateHist struct {
	counts [15]atomic.Uint64 // len(gateBounds)+1: the last is above every bound
	sum    atomic.Int64      // nanoseconds
}

func (h *gateHist) add(d time.Duration) {
	i, _ := slices.BinarySearch(gateBounds, d)
	h.counts[i].Add(1)
	if d > 0 {
		h.sum.Add(int64(d))
	}
}

// GateWaits is how long calls waited at the run gate, from the first
// attempt to a token or to giving up (deadline, cancellation). Counts[i]
// calls waited at most Bounds[i] and more than Bounds[i-1]; the last count,
// Counts[len(Bounds)], is of waits above every bound. Waits to take a lent
// token back after a host call are not counted.
type GateWaits struct {
	Bounds []time.Duration
	Counts []uint64
	Sum    time.Duration
}

// GateWaits returns the run gate's waits since the engine started.
func (e *Engine) GateWaits() GateWaits {
	w := GateWaits{Bounds: slices.Clone(gateBounds), Counts: make([]uint64, len(e.gateWaits.counts))}
	for i := range e.gateWaits.counts {
		w.Counts[i] = e.gateWaits.counts[i].Load()
	}
	w.Sum = time.Duration(e.gateWaits.sum.Load())
	return w
}

// blocking runs f, a wait in a host function, without holding the call's run
// token; it takes one again (waiting its turn) before the guest resumes.
func (st *callState) blocking(f func()) {
	if st.running == nil {
		f()
		return
	}
	<-st.running
	defer st.retake()
	f()
}

// retake takes a run token back after blocking, waiting no longer than the
// call may last: a call whose deadline passes, or whose caller goes away,
// while others hold every token gives up, is stopped by the checkInterrupt
// that follows every blocking wait, and gives back no token when it ends
// (returnToken).
func (st *callState) retake() {
	select {
	case st.running <- struct{}{}:
		return
	default:
	}
	var done <-chan struct{}
	if st.parent != nil {
		done = st.parent.Done()
	}
	var expired <-chan time.Time
	if !st.deadline.IsZero() {
		t := time.NewTimer(time.Until(st.deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case st.running <- struct{}{}:
	case <-expired:
		st.tokenLost = true
	case <-done:
		st.tokenLost = true
	}
}

// returnToken gives back the run token a call holds, unless retake gave up
// on it.
func (st *callState) returnToken() {
	if !st.tokenLost {
		<-st.running
	}
}

// DefaultMaxRunning is twice the cores Go may use: enough to keep every core
// busy while calls enter and leave wasm, few enough that each has a warm slot.
func DefaultMaxRunning() int { return 2 * runtime.GOMAXPROCS(0) }

// setReservation sets the address space each linear memory reserves and
// the guard region after it (measurements; see Config.LargeReservation).
func setReservation(wcfg *wasmtime.Config, reservation, guard uint64) {
	p := reflect.ValueOf(wcfg).Elem().FieldByIndex(configPtrField).UnsafePointer()
	C.aerofn_set_reservation(p, C.uint64_t(reservation), C.uint64_t(guard))
}

func setParallel(wcfg *wasmtime.Config, on bool) {
	p := reflect.ValueOf(wcfg).Elem().FieldByIndex(configPtrField).UnsafePointer()
	C.aerofn_set_parallel(p, C.bool(on))
}

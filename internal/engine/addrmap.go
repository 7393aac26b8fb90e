package engine

/*
#include <stdint.h>
#include <string.h>
typedef struct wasm_config_t wasm_config_t;
extern void wasmtime_config_debug_info_set(wasm_config_t *, _Bool);
extern void wasmtime_config_consume_fuel_set(wasm_config_t *, _Bool);
extern void wasmtime_config_epoch_interruption_set(wasm_config_t *, _Bool);
extern void wasmtime_config_memory_may_move_set(wasm_config_t *, _Bool);
extern void wasmtime_config_wasm_relaxed_simd_deterministic_set(wasm_config_t *, _Bool);
extern void wasmtime_config_signals_based_traps_set(wasm_config_t *, _Bool);
extern void wasmtime_config_memory_init_cow_set(wasm_config_t *, _Bool);

// What wasmtime v39's setters of the configuration's optional boolean
// tunables compile to on x86-64: mov %sil, OFFSET(%rdi); ret, each storing
// Some(enable) into one byte of the config's ConfigTunables. Their offsets
// (0x40, 0x43, 0x44, 0x45, 0x4a, 0x4c, 0x4d) are those of debug_native,
// consume_fuel, epoch_interruption, memory_may_move,
// relaxed_simd_deterministic, signals_based_traps and memory_init_cow, the
// 1st, 4th, 5th, 6th, 11th, 13th and 14th of the 15 booleans that
// define_tunables! declares; generate_address_map is the 9th, at 0x48.
#define AEROFN_SETTER(off) {0x40, 0x88, 0x77, (off), 0xc3}
static const uint8_t aerofn_tunable_setters[7][5] = {
	AEROFN_SETTER(0x40), AEROFN_SETTER(0x43), AEROFN_SETTER(0x44), AEROFN_SETTER(0x45),
	AEROFN_SETTER(0x4a), AEROFN_SETTER(0x4c), AEROFN_SETTER(0x4d),
};

static int aerofn_set_no_addrmap(void *cfg) {
	const void *setters[7] = {
		(const void *)wasmtime_config_debug_info_set,
		(const void *)wasmtime_config_consume_fuel_set,
		(const void *)wasmtime_config_epoch_interruption_set,
		(const void *)wasmtime_config_memory_may_move_set,
		(const void *)wasmtime_config_wasm_relaxed_simd_deterministic_set,
		(const void *)wasmtime_config_signals_based_traps_set,
		(const void *)wasmtime_config_memory_init_cow_set,
	};
	for (int i = 0; i < 7; i++) {
		if (memcmp(setters[i], aerofn_tunable_setters[i], sizeof aerofn_tunable_setters[i]) != 0) return 0;
	}
	uint8_t *b = (uint8_t *)cfg;
	if (b[0x48] != 2) return 0; // None, as a config the C API made has it
	b[0x48] = 0;                // Some(false)
	return 1;
}
*/
import "C"

import (
	"bytes"
	"debug/elf"
	"reflect"
	"sync"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// No address map on the cheap tier.
//
// wasmtime puts in every artifact a map from each native instruction to the
// wasm offset it came from (section .wasmtime.addrmap, a quarter of a cheap
// hello artifact), which serves only the wasm offsets printed in a trap's
// backtrace; the frames' function names come from the name section and
// the traps themselves from .wasmtime.traps. Rust's Config::
// generate_address_map(false) leaves it out, but the C API of wasmtime v39
// does not offer it. setNoAddrMap writes Some(false) into that tunable's
// byte, 0x48 of this build's wasm_config_t, after checking that seven C
// setters of its neighbouring boolean tunables are exactly the code above
// (so the booleans sit where wasmtime's declaration order puts them, with
// generate_address_map between memory_may_move at 0x45 and
// relaxed_simd_deterministic at 0x4a) and that the byte holds None. Any
// other build fails the check and keeps the map (TestCheapTierNoAddressMap
// fails, so an upgrade is noticed). addrMapOffConfirmed checks the effect
// once per process before the cheap tier uses it.

// setNoAddrMap makes wcfg compile without the address map; false, changing
// nothing, when it cannot be done safely.
func setNoAddrMap(wcfg *wasmtime.Config) bool {
	if !poolSupported {
		return false
	}
	p := reflect.ValueOf(wcfg).Elem().FieldByIndex(configPtrField).UnsafePointer()
	return p != nil && C.aerofn_set_no_addrmap(p) == 1
}

// addrMapProbe is (module (func (export "f") (param i32) (result i32)
// local.get 0 i32.const 1 i32.add)): a function, so an address map.
var addrMapProbe = []byte("\x00asm\x01\x00\x00\x00\x01\x06\x01\x60\x01\x7f\x01\x7f\x03\x02\x01\x00\x07\x05\x01\x01f\x00\x00\x0a\x09\x01\x07\x00\x20\x00\x41\x01\x6a\x0b")

// addrMapOffConfirmed reports whether setNoAddrMap does what it is for and
// nothing else: of two probe engines that differ in that byte only, the
// one with it compiles an artifact without .wasmtime.addrmap, the other one
// with it, every other section of the two is the same size, and their
// engine records (which hold the tunables) differ in one byte. Once per
// process.
var addrMapOffConfirmed = sync.OnceValue(func() bool {
	with, without := addrMapProbeSections(false), addrMapProbeSections(true)
	if with == nil || without == nil || with[".wasmtime.addrmap"] == nil || without[".wasmtime.addrmap"] != nil {
		return false
	}
	delete(with, ".wasmtime.addrmap")
	if len(with) != len(without) {
		return false
	}
	for name, a := range with {
		b, ok := without[name]
		switch {
		case !ok || len(a) != len(b):
			return false
		case name == ".wasmtime.engine":
			diff := 0
			for i := range a {
				if a[i] != b[i] {
					diff++
				}
			}
			if diff != 1 {
				return false
			}
		}
	}
	return true
})

// addrMapProbeSections compiles addrMapProbe on a plain engine, with
// setNoAddrMap applied if off, and returns the artifact's sections by name
// (only .wasmtime.engine's data, the others' sizes as zero-filled slices);
// nil when anything fails. The section name table, which names the map,
// is left out.
func addrMapProbeSections(off bool) map[string][]byte {
	cfg := wasmtime.NewConfig()
	if off && !setNoAddrMap(cfg) {
		return nil
	}
	m, err := wasmtime.NewModule(wasmtime.NewEngineWithConfig(cfg), addrMapProbe)
	if err != nil {
		return nil
	}
	art, err := m.Serialize()
	m.Close()
	if err != nil {
		return nil
	}
	f, err := elf.NewFile(bytes.NewReader(art))
	if err != nil {
		return nil
	}
	secs := map[string][]byte{}
	for _, s := range f.Sections {
		if s.Name == ".shstrtab" {
			continue
		}
		if s.Name == ".wasmtime.engine" {
			if secs[s.Name], err = s.Data(); err != nil {
				return nil
			}
			continue
		}
		secs[s.Name] = make([]byte, s.Size)
	}
	return secs
}

package engine

/*
#include <stdint.h>
#include <string.h>
typedef struct wasm_config_t wasm_config_t;
extern void wasmtime_config_strategy_set(wasm_config_t *, uint8_t);

// What wasmtime v39's wasmtime_config_strategy_set compiles to on x86-64:
// movb $0x1, 0x179(%rdi); ret. It stores Strategy::Cranelift (1) into the
// config's strategy whichever of the C API's two values it is given.
static const uint8_t aerofn_strategy_code[] = {0xc6, 0x87, 0x79, 0x01, 0x00, 0x00, 0x01, 0xc3};

static int aerofn_set_winch(void *cfg) {
	if (memcmp((const void *)wasmtime_config_strategy_set, aerofn_strategy_code, sizeof aerofn_strategy_code) != 0) return 0;
	wasmtime_config_strategy_set(cfg, 1);
	if (((const uint8_t *)cfg)[0x179] != 1) return 0;
	((uint8_t *)cfg)[0x179] = 2; // Strategy::Winch
	return 1;
}
*/
import "C"

import (
	"reflect"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Selecting Winch.
//
// wasmtime's Rust API selects a compiler with Config::strategy (Auto,
// Cranelift, Winch: 0, 1, 2), and the library wasmtime-go links contains
// Winch, but the C API of wasmtime v39 offers only Auto and Cranelift.
// setWinch reaches the same field: it checks that the C setter's machine
// code is exactly the two instructions above (so the field is the byte
// at 0x179 of this build's wasm_config_t, and the setter writes nothing
// else), calls it, checks that the byte now reads Cranelift, and writes
// Winch there. Any other build of the library (another wasmtime-go,
// another architecture) fails the check, and the cheap tier compiles with
// Cranelift as before (TestCheapTierIsWinch fails, so an upgrade is
// noticed). wasmtime itself records the compiler in every artifact's
// compatibility section and refuses Winch code on a Cranelift engine, so
// a wrong write could not run code on the wrong calling convention
// unnoticed (TestCheapTierIsWinch checks that refusal too).

// setWinch makes wcfg compile with Winch; false, changing nothing, when it
// cannot be done safely.
func setWinch(wcfg *wasmtime.Config) bool {
	if !poolSupported {
		return false
	}
	p := reflect.ValueOf(wcfg).Elem().FieldByIndex(configPtrField).UnsafePointer()
	return p != nil && C.aerofn_set_winch(p) == 1
}

package engine

import "os"

// Rust's standard library captures a native backtrace into every error
// wasmtime creates (each trap, each artifact a probe engine refuses) when
// RUST_BACKTRACE is set in the environment, and formatting such an error
// resolves the backtrace's symbols from the binary's compressed debug
// information. The engine never shows that backtrace (trapError keeps the
// wasm frames and the cause), yet a node started with RUST_BACKTRACE=1 paid
// for it: its first deploy took 0.2-0.45 s longer, mostly inflating and
// reading the debug sections, and every trap paid for a capture and its
// formatting (docs/RATIONALE.md, "Native backtraces in wasmtime's errors").
//
// RUST_LIB_BACKTRACE, which the standard library reads before
// RUST_BACKTRACE for errors only, is set to 0 unless the operator set it, so
// RUST_BACKTRACE keeps its meaning for panics. It is set in init, before any
// wasmtime call: the standard library reads it once, at the first capture.
func init() {
	if _, set := os.LookupEnv("RUST_LIB_BACKTRACE"); !set {
		_ = os.Setenv("RUST_LIB_BACKTRACE", "0")
	}
}

;; Sets output "partial", then proc_exit(length of the event).
(module
  (import "aerodb" "input_len" (func $input_len (result i32)))
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "partial")
  (func (export "handler") (result i32)
    (drop (call $output (i32.const 0) (i32.const 7)))
    (call $exit (call $input_len))
    (i32.const 99)))

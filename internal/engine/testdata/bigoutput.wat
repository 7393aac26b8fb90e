;; Passes 7 MiB to output, over the 6 MiB cap.
(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 112)
  (func (export "handler") (result i32)
    (drop (call $output (i32.const 0) (i32.const 7340032)))
    (i32.const 0)))

;; Sets an error message and returns nonzero.
(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "bad input")
  (func (export "handler") (result i32)
    (drop (call $output (i32.const 0) (i32.const 9)))
    (i32.const 7)))

;; The smallest useful function: sets output "hello" and succeeds.
(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello")
  (func (export "handler") (result i32)
    (drop (call $output (i32.const 0) (i32.const 5)))
    (i32.const 0)))

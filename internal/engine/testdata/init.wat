;; _initialize must run before handler.
(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (data (i32.const 0) "initialized")
  (func (export "_initialize")
    (global.set $ready (i32.const 42)))
  (func (export "handler") (result i32)
    (if (i32.ne (global.get $ready) (i32.const 42))
      (then (return (i32.const 1))))
    (drop (call $output (i32.const 0) (i32.const 11)))
    (i32.const 0)))

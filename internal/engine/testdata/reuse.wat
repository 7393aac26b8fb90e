;; A pre-initialised module whose handler reports the state it starts from
;; (a byte _initialize wrote, a byte of zeroed memory, two globals) and then
;; changes all of it: a reused instance must start every call the same way.
(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (global $h (mut i64) (i64.const 0))
  (func (export "_initialize")
    (global.set $g (i32.const 7))
    (global.set $h (i64.const 9))
    (i32.store8 (i32.const 100) (i32.const 65)))
  (func (export "handler") (result i32)
    (i32.store8 (i32.const 0) (i32.load8_u (i32.const 100)))
    (i32.store8 (i32.const 1) (i32.add (i32.const 48) (i32.load8_u (i32.const 40000))))
    (i32.store8 (i32.const 2) (i32.add (i32.const 48) (global.get $g)))
    (i32.store8 (i32.const 3) (i32.add (i32.const 48) (i32.wrap_i64 (global.get $h))))
    (drop (call $output (i32.const 0) (i32.const 4)))
    (i32.store8 (i32.const 100) (i32.const 66))
    (i32.store8 (i32.const 40000) (i32.const 5))
    (global.set $g (i32.const 1))
    (global.set $h (i64.const 2))
    (i32.const 0)))

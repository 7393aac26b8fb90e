;; Unbounded recursion (not a tail call, so each level takes stack).
(module
  (memory (export "memory") 1)
  (func $r (param i32) (result i32)
    (i32.add (call $r (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "handler") (result i32)
    (call $r (i32.const 0))))

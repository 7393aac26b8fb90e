;; Needs 20 MiB of memory before it runs.
(module
  (memory (export "memory") 320)
  (func (export "handler") (result i32) (i32.const 0)))

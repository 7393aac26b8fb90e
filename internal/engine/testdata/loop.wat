;; Never returns and never calls the host: only epoch interruption stops it.
(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (loop $l (br $l))
    (i32.const 0)))

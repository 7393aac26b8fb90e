;; Loads and stores at addresses far past its one page of memory.
(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (i32.store (i32.const 0x7fff0000) (i32.const 1))
    (i32.load (i32.const 0xfffffff0))))

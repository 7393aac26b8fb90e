(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    unreachable))

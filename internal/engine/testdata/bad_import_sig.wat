;; db_query is (i32, i32) -> i32 in the ABI.
(module
  (import "aerodb" "db_query" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "handler") (result i32) (i32.const 0)))

;; Reads the whole event (growing memory to fit) and returns it as output.
(module
  (import "aerodb" "input_len" (func $input_len (result i32)))
  (import "aerodb" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (local $n i32)
    (local $pages i32)
    (local.set $n (call $input_len))
    (local.set $pages (i32.div_u (i32.add (local.get $n) (i32.const 65535)) (i32.const 65536)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (return (i32.const 2))))))
    (if (i32.ne (call $input_read (i32.const 0) (local.get $n)) (local.get $n))
      (then (return (i32.const 3))))
    (drop (call $output (i32.const 0) (local.get $n)))
    (i32.const 0)))

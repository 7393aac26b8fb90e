;; Grows memory a page at a time until memory.grow fails, then aborts, as a
;; language runtime does when its allocator runs dry.
(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (loop $l
      (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))

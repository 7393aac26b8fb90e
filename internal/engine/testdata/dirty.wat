;; Outputs 8 bytes of its memory (4 from a data segment, 4 from zeroed
;; memory), then overwrites them, grows memory by a page and writes into it:
;; a call that sees another call's writes outputs something other than
;; "seed" followed by four zero bytes, or a memory over one page at start.
(module
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "seed")
  (global $calls (mut i32) (i32.const 0))
  (func (export "handler") (result i32)
    (if (i32.ne (memory.size) (i32.const 1)) (then (return (i32.const 2))))
    (if (i32.ne (global.get $calls) (i32.const 0)) (then (return (i32.const 3))))
    (global.set $calls (i32.const 1))
    (drop (call $out (i32.const 100) (i32.const 8)))
    (i32.store (i32.const 100) (i32.const 0x64726964))
    (i32.store (i32.const 104) (i32.const -1))
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const 65540) (i32.const -1))
    (i32.const 0)))

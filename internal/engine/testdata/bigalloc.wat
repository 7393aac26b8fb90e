;; Asks for 64 MiB in one memory.grow; when that is refused it reports
;; "out of memory" on stderr and exits 2, like Go's runtime.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "fatal error: out of memory\n")
  (data (i32.const 100) "\00\00\00\00\1b\00\00\00")
  (func (export "handler") (result i32)
    (if (i32.ne (memory.grow (i32.const 1024)) (i32.const -1))
      (then (return (i32.const 0))))
    (drop (call $fd_write (i32.const 2) (i32.const 100) (i32.const 1) (i32.const 200)))
    (call $exit (i32.const 2))
    (i32.const 1)))

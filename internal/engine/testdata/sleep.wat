;; Sleeps 60 s through poll_oneoff: the call's deadline must cut it short.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; subscription: userdata 1, tag clock, clock id monotonic, timeout 60e9 ns
  (data (i32.const 0) "\01\00\00\00\00\00\00\00")
  (data (i32.const 16) "\01\00\00\00")
  (data (i32.const 24) "\00\58\47\f8\0d\00\00\00")
  (func (export "handler") (result i32)
    (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
    (i32.const 0)))

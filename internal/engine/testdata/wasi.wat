;; Exercises the WASI functions a guest runtime uses; returns 0 when every
;; answer is as docs/ABI.md says, else the number of the failed check.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get" (func $clock_res_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\ff\ff\ff\ff\ff\ff\ff\ff")
  ;; poll_oneoff subscription at 200: userdata 7, clock, monotonic, 20 ms relative
  (data (i32.const 200) "\07\00\00\00\00\00\00\00")
  (data (i32.const 216) "\01\00\00\00")
  (data (i32.const 224) "\00\2d\31\01\00\00\00\00")
  (func (export "handler") (result i32)
    (local $t0 i64)
    ;; 1: no arguments
    (if (call $args_sizes_get (i32.const 0) (i32.const 4)) (then (return (i32.const 1))))
    (if (i64.ne (i64.load (i32.const 0)) (i64.const 0)) (then (return (i32.const 1))))
    ;; 2: no environment
    (i64.store (i32.const 0) (i64.const -1))
    (if (call $environ_sizes_get (i32.const 0) (i32.const 4)) (then (return (i32.const 2))))
    (if (i64.ne (i64.load (i32.const 0)) (i64.const 0)) (then (return (i32.const 2))))
    ;; 3: real time is after 2020
    (if (call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 16)) (then (return (i32.const 3))))
    (if (i64.lt_u (i64.load (i32.const 16)) (i64.const 1577836800000000000)) (then (return (i32.const 3))))
    ;; 4: unknown clock is EINVAL
    (if (i32.ne (call $clock_time_get (i32.const 99) (i64.const 0) (i32.const 16)) (i32.const 28)) (then (return (i32.const 4))))
    ;; 5: clock resolution
    (if (call $clock_res_get (i32.const 1) (i32.const 16)) (then (return (i32.const 5))))
    ;; 6: random bytes are not all zero
    (if (call $random_get (i32.const 64) (i32.const 32)) (then (return (i32.const 6))))
    (if (i64.eqz (i64.or (i64.or (i64.load (i32.const 64)) (i64.load (i32.const 72)))
                         (i64.or (i64.load (i32.const 80)) (i64.load (i32.const 88)))))
      (then (return (i32.const 6))))
    ;; 7: no preopened directories
    (if (i32.ne (call $fd_prestat_get (i32.const 3) (i32.const 100)) (i32.const 8)) (then (return (i32.const 7))))
    ;; 8: no files
    (if (i32.ne (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0)
                                 (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 100)) (i32.const 8))
      (then (return (i32.const 8))))
    ;; 9: stdin reads are not supported
    (if (i32.ne (call $fd_read (i32.const 0) (i32.const 100) (i32.const 0) (i32.const 100)) (i32.const 58)) (then (return (i32.const 9))))
    ;; 10: no sockets
    (if (i32.ne (call $sock_accept (i32.const 5) (i32.const 0) (i32.const 100)) (i32.const 8)) (then (return (i32.const 10))))
    ;; 11: sched_yield succeeds
    (if (call $sched_yield) (then (return (i32.const 11))))
    ;; 12: poll_oneoff sleeps 20 ms and reports the clock event
    (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 16)))
    (local.set $t0 (i64.load (i32.const 16)))
    (if (call $poll (i32.const 200) (i32.const 300) (i32.const 1) (i32.const 400)) (then (return (i32.const 12))))
    (if (i32.ne (i32.load (i32.const 400)) (i32.const 1)) (then (return (i32.const 13))))
    (if (i64.ne (i64.load (i32.const 300)) (i64.const 7)) (then (return (i32.const 14))))
    (if (i32.ne (i32.load16_u (i32.const 308)) (i32.const 0)) (then (return (i32.const 15))))
    (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 16)))
    (if (i64.lt_u (i64.sub (i64.load (i32.const 16)) (local.get $t0)) (i64.const 20000000)) (then (return (i32.const 16))))
    (i32.const 0)))

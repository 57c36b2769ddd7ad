;; Sleeps for an hour in one poll_oneoff, then prints "woke" (it never should: a kill or
;; its deadline must cut the sleep short). Prints "sleeping" first, so tests know it started.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "sleeping\n")
  (data (i32.const 528) "woke\n")
  (func $print (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (call $print (i32.const 512) (i32.const 9))
    ;; subscription at 128: userdata 7, tag clock, realtime clock, relative 3600 s
    (i64.store (i32.const 128) (i64.const 7))
    (i32.store8 (i32.const 136) (i32.const 0))
    (i32.store (i32.const 144) (i32.const 0))
    (i64.store (i32.const 152) (i64.const 3600000000000))
    (i64.store (i32.const 160) (i64.const 0))
    (i32.store16 (i32.const 168) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 320)))
    (call $print (i32.const 528) (i32.const 5))))

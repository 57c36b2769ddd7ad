;; Hostile sleeps on absolute clocks: first on the monotonic clock until the end of time (the
;; sandbox refuses it: prints "refused"), then on the realtime clock until the end of time
;; (the sandbox sleeps it, and its deadline must end it). Never prints "woke".
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "refused\n")
  (data (i32.const 528) "woke\n")
  (func $print (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $sleep_until_forever (param $clock i32) (result i32)
    ;; subscription at 128: userdata 1, tag clock, the clock, timeout u64::MAX, flags abstime
    (i64.store (i32.const 128) (i64.const 1))
    (i32.store8 (i32.const 136) (i32.const 0))
    (i32.store (i32.const 144) (local.get $clock))
    (i64.store (i32.const 152) (i64.const -1))
    (i64.store (i32.const 160) (i64.const 0))
    (i32.store16 (i32.const 168) (i32.const 1))
    (call $poll_oneoff (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 320)))
  (func (export "_start")
    (if (i32.ne (call $sleep_until_forever (i32.const 1)) (i32.const 0))
      (then (call $print (i32.const 512) (i32.const 8))))
    (drop (call $sleep_until_forever (i32.const 0)))
    (call $print (i32.const 528) (i32.const 5))))

;; Prints "tick N" every 100 ms, ten times: proves output streams while a program runs.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "tick 0\n")
  (func $sleep_100ms
    ;; subscription at 128 (48 bytes): userdata, tag=clock, clock id=monotonic, timeout=100 ms
    (i64.store (i32.const 128) (i64.const 1))
    (i32.store8 (i32.const 136) (i32.const 0))
    (i32.store (i32.const 144) (i32.const 1))
    (i64.store (i32.const 152) (i64.const 100000000))
    (i64.store (i32.const 160) (i64.const 0))
    (i32.store16 (i32.const 168) (i32.const 0))
    ;; event out at 256, count at 320
    (drop (call $poll_oneoff (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 320))))
  (func (export "_start") (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 10)))
      (i32.store8 (i32.const 517) (i32.add (i32.const 48) (local.get $i)))
      (i32.store (i32.const 0) (i32.const 512))
      (i32.store (i32.const 4) (i32.const 7))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (call $sleep_100ms)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))))

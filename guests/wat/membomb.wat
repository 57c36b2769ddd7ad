;; Hostile: grows memory 64 KiB at a time forever; traps when a grow is refused.
(module
  (memory 1)
  (func (export "_start")
    (loop $more
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
      (br $more))))

;; Bad: imports something the sandbox does not provide (a socket, say).
(module
  (import "env" "open_socket" (func $open_socket (param i32) (result i32)))
  (func (export "_start")
    (drop (call $open_socket (i32.const 80)))))

;; Bad: a module with no _start to run.
(module
  (func (export "main")))

;; Hostile: never ends. Must be killed at its deadline.
(module
  (func (export "_start")
    (loop $forever (br $forever))))

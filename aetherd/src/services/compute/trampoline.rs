//! The trampoline each job's store gets: a tiny wasm instance that imports the guest's
//! memory, re-exports it as `memory`, and has one function per shadowed WASI call that calls
//! wasmtime-wasi's own (which finds the memory through its caller's export), so the guard's
//! shadows can delegate to it.

use wasmtime::{Engine, Extern, Instance, Linker, Module, Store};

use super::guard::{Guarded, MODULE};

/// The shadowed calls and their parameter types (each returns an errno).
const SHADOWED: &[(&str, &str)] = &[
    ("fd_write", "i32 i32 i32 i32"),
    ("fd_pwrite", "i32 i32 i32 i64 i32"),
    ("fd_filestat_set_size", "i32 i64"),
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32"),
    ("path_symlink", "i32 i32 i32 i32 i32"),
    ("path_link", "i32 i32 i32 i32 i32 i32 i32"),
    ("path_create_directory", "i32 i32 i32"),
    ("path_remove_directory", "i32 i32 i32"),
    ("path_unlink_file", "i32 i32 i32"),
    ("path_rename", "i32 i32 i32 i32 i32 i32"),
    ("path_filestat_get", "i32 i32 i32 i32 i32"),
    ("path_readlink", "i32 i32 i32 i32 i32 i32"),
    ("path_filestat_set_times", "i32 i32 i32 i32 i64 i64 i32"),
    ("fd_readdir", "i32 i32 i32 i64 i32"),
    ("fd_close", "i32"),
    ("fd_renumber", "i32 i32"),
    ("poll_oneoff", "i32 i32 i32 i32"),
];

/// The trampoline: the guest's memory in, re-exported as `memory`, and one wasm function per
/// shadowed call that calls wasmtime-wasi's.
pub struct Trampoline<T> {
    module: Module,
    /// wasmtime-wasi's own functions, unshadowed.
    wasi: Linker<T>,
}

impl<T: Guarded> Trampoline<T> {
    pub fn new(engine: &Engine, wasi: Linker<T>) -> wasmtime::Result<Trampoline<T>> {
        let mut wat = String::from("(module (import \"env\" \"memory\" (memory 0))\n");
        for (name, params) in SHADOWED {
            wat += &format!(
                "(import \"{MODULE}\" \"{name}\" (func ${name} (param {params}) (result i32)))\n"
            );
        }
        wat += "(export \"memory\" (memory 0))\n";
        for (name, params) in SHADOWED {
            let args: String = (0..params.split(' ').count())
                .map(|i| format!(" (local.get {i})"))
                .collect();
            wat += &format!(
                "(func (export \"{name}\") (param {params}) (result i32) (call ${name}{args}))\n"
            );
        }
        wat += ")";
        Ok(Trampoline {
            module: Module::new(engine, &wat)?,
            wasi,
        })
    }

    /// Give the guest's store its trampoline, once the guest (and so its memory) exists.
    /// A guest without a `memory` export cannot use WASI at all; it gets none.
    pub fn attach(&self, store: &mut Store<T>, guest: &Instance) -> wasmtime::Result<()> {
        let Some(memory) = guest.get_memory(&mut *store, "memory") else {
            return Ok(());
        };
        let mut imports = vec![Extern::Memory(memory)];
        for (name, _) in SHADOWED {
            imports.push(self.wasi.get(&mut *store, MODULE, name)?);
        }
        let instance = Instance::new(&mut *store, &self.module, &imports)?;
        for (name, _) in SHADOWED {
            let func = instance
                .get_func(&mut *store, name)
                .ok_or_else(|| wasmtime::Error::msg(format!("the trampoline has no {name}")))?;
            store.data_mut().guard_mut().set_delegate(name, func);
        }
        Ok(())
    }
}

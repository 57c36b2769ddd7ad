//! What a new user finds in their files: a few sample programs to run in the VM
//! Terminal (`run /examples/ticker.wasm`) and a note saying what they do. Built from the
//! WAT sources in `guests/wat/`, so they need no WebAssembly toolchain.

use std::io;
use std::path::Path;

const PROGRAMS: [(&str, &str); 3] = [
    (
        "hello.wasm",
        include_str!("../../../../guests/wat/hello.wat"),
    ),
    (
        "ticker.wasm",
        include_str!("../../../../guests/wat/ticker.wat"),
    ),
    ("echo.wasm", include_str!("../../../../guests/wat/echo.wat")),
];

const README: &str = "\
# Examples

Programs to try. In the desktop, select one in the File Explorer and press Enter: it runs
in the VM Terminal. Or type these in the terminal (Ctrl-g p, then `terminal`, opens one):

- `run /examples/hello.wasm you there`: greets, then prints each argument.
- `run /examples/ticker.wasm`: prints a tick every 100 ms, ten times; its output arrives as it is
  written. Ctrl-C stops it.
- `run /examples/echo.wasm`: repeats every line you type until Ctrl-D.

Your own programs: any WASI (preview 1) module in your files, e.g. built with
`cargo build --target wasm32-wasip1` and put here with `aetherctl fs put`.
";

/// Fill a new root's `/examples`. Called once, when the root is created.
pub fn seed(root: &Path) -> io::Result<()> {
    let dir = root.join("examples");
    std::fs::create_dir_all(&dir)?;
    for (name, source) in PROGRAMS {
        let module = wat::parse_str(source).map_err(io::Error::other)?;
        std::fs::write(dir.join(name), module)?;
    }
    std::fs::write(dir.join("README.md"), README)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_examples_compile() {
        let dir = tempfile::tempdir().unwrap();
        super::seed(dir.path()).unwrap();
        for (name, _) in super::PROGRAMS {
            let bytes = std::fs::read(dir.path().join("examples").join(name)).unwrap();
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
        }
    }
}

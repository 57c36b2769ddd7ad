//! Installed apps' entry modules. An app's files (its bundle) live in one folder:
//! `<manifests dir>/<id>/` for an app placed there by hand, the install service's
//! folder for an installed one; the manifest's `entry` names the module inside it.

use std::io::Read;
use std::path::Path;

use aether_proto::{ErrorBody, ErrorCode, Manifest};

/// Read an app's entry module from its bundle. Blocking.
///
/// The bundle is opened as a capability (cap-std), so neither the entry path
/// nor a symlink inside the bundle can lead out of it.
pub fn read_entry(bundle: &Path, app: &Manifest, max_bytes: u64) -> Result<Vec<u8>, ErrorBody> {
    let Some(entry) = app.entry.as_deref() else {
        return Err(ErrorBody::new(
            ErrorCode::BadFrame,
            format!(
                "app {:?} has no entry module: it is built into the desktop",
                app.id
            ),
        ));
    };
    let missing = || {
        ErrorBody::new(
            ErrorCode::NotFound,
            format!(
                "app {:?} is installed but its entry {entry:?} is missing: put it in {}",
                app.id,
                bundle.display()
            ),
        )
    };
    let too_large = || {
        ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "the entry of app {:?} is larger than the {} MiB a module may be",
                app.id,
                max_bytes >> 20
            ),
        )
    };
    let dir = cap_std::fs::Dir::open_ambient_dir(bundle, cap_std::ambient_authority())
        .map_err(|_| missing())?;
    // Looked at before opening: opening a FIFO would block. The entry must be a plain file.
    // Missing, or not ours to open: said the same way for the look and the open.
    let unopenable = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => missing(),
        _ => ErrorBody::new(
            ErrorCode::Forbidden,
            format!(
                "the entry {entry:?} of app {:?} cannot be opened: {e}",
                app.id
            ),
        ),
    };
    let kind = dir.symlink_metadata(entry).map_err(unopenable)?;
    if !kind.is_file() {
        return Err(ErrorBody::new(
            ErrorCode::Forbidden,
            format!(
                "the entry {entry:?} of app {:?} is not a plain file in its bundle",
                app.id
            ),
        ));
    }
    let file = dir.open(entry).map_err(unopenable)?;
    let meta = file
        .metadata()
        .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
    if !meta.is_file() {
        return Err(ErrorBody::new(
            ErrorCode::BadFrame,
            format!("the entry {entry:?} of app {:?} is not a file", app.id),
        ));
    }
    if meta.len() > max_bytes {
        return Err(too_large());
    }
    let mut wasm = Vec::with_capacity(meta.len() as usize);
    file.into_std()
        .take(max_bytes + 1)
        .read_to_end(&mut wasm)
        .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
    if wasm.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(wasm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(entry: Option<&str>) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "id": "hello", "name": "Hello", "version": "1.0.0", "entry": entry
        }))
        .unwrap()
    }

    #[test]
    fn reads_inside_the_bundle_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("hello")).unwrap();
        std::fs::write(dir.path().join("hello/main.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.path().join("secret.wasm"), b"secret").unwrap();
        std::os::unix::fs::symlink("../secret.wasm", dir.path().join("hello/out.wasm")).unwrap();

        assert_eq!(
            read_entry(&dir.path().join("hello"), &app(Some("main.wasm")), 1 << 20).unwrap(),
            b"\0asm"
        );
        let escaped =
            read_entry(&dir.path().join("hello"), &app(Some("out.wasm")), 1 << 20).unwrap_err();
        assert_eq!(escaped.code, ErrorCode::Forbidden, "{}", escaped.msg);
        let missing =
            read_entry(&dir.path().join("hello"), &app(Some("gone.wasm")), 1 << 20).unwrap_err();
        assert_eq!(missing.code, ErrorCode::NotFound);
        assert!(missing.msg.contains("gone.wasm"), "{}", missing.msg);
        let built_in = read_entry(&dir.path().join("hello"), &app(None), 1 << 20).unwrap_err();
        assert_eq!(built_in.code, ErrorCode::BadFrame);
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("hello/pipe.wasm"))
            .status()
            .unwrap();
        assert!(status.success());
        let fifo =
            read_entry(&dir.path().join("hello"), &app(Some("pipe.wasm")), 1 << 20).unwrap_err();
        assert_eq!(
            fifo.code,
            ErrorCode::Forbidden,
            "a FIFO is refused, not opened"
        );
        let big = read_entry(&dir.path().join("hello"), &app(Some("main.wasm")), 2).unwrap_err();
        assert_eq!(big.code, ErrorCode::TooLarge);
    }
}

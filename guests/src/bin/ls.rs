//! Lists a directory of the preopened root (default "/"): kind, size, name.
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/".into());
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("ls: {dir}: {e}");
            std::process::exit(1);
        }
    };
    let mut rows: Vec<(String, String)> = entries
        .flatten()
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().ok();
            let kind = match &meta {
                Some(m) if m.is_dir() => "d".to_owned(),
                Some(m) => format!("{}", m.len()),
                None => "?".to_owned(),
            };
            (name, kind)
        })
        .collect();
    rows.sort();
    for (name, kind) in rows {
        println!("{kind:>10} {name}");
    }
}

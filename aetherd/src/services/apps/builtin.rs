//! The sample catalog compiled into aetherd: `aetherd/catalog/`, written by
//! `scripts/build-catalog` from the sources in `guests/apps/`.

pub const FILES: &[(&str, &[u8])] = &[
    ("index.json", include_bytes!("../../../catalog/index.json")),
    (
        "ask-1.0.0.tar.gz",
        include_bytes!("../../../catalog/ask-1.0.0.tar.gz"),
    ),
    (
        "todo-1.1.0.tar.gz",
        include_bytes!("../../../catalog/todo-1.1.0.tar.gz"),
    ),
    (
        "wordcount-1.0.0.tar.gz",
        include_bytes!("../../../catalog/wordcount-1.0.0.tar.gz"),
    ),
];

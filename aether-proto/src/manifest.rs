//! App manifests (`manifest.json`): what an app is and which capabilities it asks for.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::capability::Capability;

/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `[a-z][a-z0-9_-]{0,31}`: the name frames use in their `app` field.
    pub id: String,
    /// Shown to people.
    pub name: String,
    /// A semantic version, `MAJOR.MINOR.PATCH`.
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Each capability with the reason shown to the user; a file capability may be
    /// limited to paths (`{"reason": "…", "paths": ["/todo.md", "/Documents/**"]}`).
    #[serde(default)]
    pub permissions: BTreeMap<Capability, Permission>,
    /// A WASI module inside the app bundle, or null for built-in apps.
    #[serde(default)]
    pub entry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// What an app says of one capability: why it wants it, and for `vfs_read` and
/// `vfs_write`, optionally the only paths it wants it for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Permission {
    /// The reason: the capability as a whole (all of the user's files, for a file one).
    Reason(String),
    /// The reason, and the paths the capability is limited to.
    Scoped(Scope),
}

/// A file capability limited to paths: globs in the user's tree. `/todo.md` is that file;
/// `/notes/*.md` the Markdown files in `/notes`; `/Documents/**` that folder and everything
/// in it. Nothing else of the user's files is reachable through it, by request or by program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub reason: String,
    pub paths: Vec<String>,
}

/// The most paths one capability may be limited to.
pub const MAX_SCOPE_PATHS: usize = 32;

impl Permission {
    pub fn reason(&self) -> &str {
        match self {
            Permission::Reason(reason) | Permission::Scoped(Scope { reason, .. }) => reason,
        }
    }

    /// The paths it is limited to; empty: not limited.
    pub fn paths(&self) -> &[String] {
        match self {
            Permission::Reason(_) => &[],
            Permission::Scoped(scope) => &scope.paths,
        }
    }
}

impl From<&str> for Permission {
    fn from(reason: &str) -> Permission {
        Permission::Reason(reason.to_owned())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// A capability's paths, ready to ask: `*` and `?` stay within a name, `**` spans folders,
/// and `/folder/**` covers the folder itself too.
#[derive(Debug, Clone)]
pub struct PathScope {
    set: globset::GlobSet,
    /// The literal folders whose whole tree a `/folder/**` pattern covers.
    trees: Vec<String>,
}

fn glob(path: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(path)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

impl PathScope {
    pub fn new(paths: &[String]) -> Result<PathScope, String> {
        let mut set = globset::GlobSetBuilder::new();
        let mut trees = Vec::new();
        for path in paths {
            if let Some(problem) = scope_path_problem(path) {
                return Err(problem);
            }
            set.add(glob(path).map_err(|e| e.to_string())?);
            if let Some(folder) = path.strip_suffix("/**") {
                if !folder.contains(['*', '?', '[', '{']) {
                    trees.push(if folder.is_empty() {
                        "/".into()
                    } else {
                        folder.into()
                    });
                }
                if !folder.is_empty() {
                    set.add(glob(folder).map_err(|e| e.to_string())?);
                }
            }
        }
        Ok(PathScope {
            set: set.build().map_err(|e| e.to_string())?,
            trees,
        })
    }

    /// Is this (tidy, absolute) path within the scope?
    pub fn covers(&self, path: &str) -> bool {
        self.set.is_match(path) || self.covers_tree(path)
    }

    /// Is everything under this folder within the scope (so its listing reveals nothing
    /// outside it)?
    pub fn covers_tree(&self, folder: &str) -> bool {
        self.trees.iter().any(|tree| {
            tree == "/"
                || folder == tree
                || folder
                    .strip_prefix(tree.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// What is wrong with a scope's path, if anything: an absolute path in the user's tree, as
/// a glob (`*` within a name, `**` for any depth, `?`, `[…]`), no `.` or `..`.
pub fn scope_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!(
            "{path:?} must start with `/` (a path in the user's files)"
        ));
    }
    if path.len() > 256 || path.chars().any(char::is_control) || path.contains('\\') {
        return Some(format!(
            "{path:?} is too long, or holds control characters or `\\`"
        ));
    }
    if path.len() > 1
        && path[1..]
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Some(format!("{path:?} has an empty, `.` or `..` segment"));
    }
    if let Err(e) = glob(path) {
        return Some(format!("{path:?} is not a glob: {e}"));
    }
    None
}

/// Resource limits for an app's programs; the daemon caps them with its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_kb: Option<u32>,
}

/// A manifest that was refused, naming the file and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub file: String,
    /// Dotted path of the field, or `(document)` when the JSON itself is broken.
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: field `{}`: {}", self.file, self.field, self.problem)
    }
}

/// Is `id` a valid app id?
pub fn valid_app_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && id.len() <= 32
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A semantic version (`1.2.3`, `1.0.0-beta.1`; no leading zeros), at most 64 bytes.
pub fn parse_version(v: &str) -> Option<semver::Version> {
    if v.len() > 64 {
        return None;
    }
    semver::Version::parse(v).ok()
}

fn valid_version(v: &str) -> bool {
    parse_version(v).is_some()
}

fn valid_entry(entry: &str) -> bool {
    !entry.is_empty()
        && entry.len() <= 255
        && entry.ends_with(".wasm")
        && !entry.starts_with('/')
        && entry
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && !entry.contains(['\\', '\0'])
}

impl Manifest {
    /// Parse and validate a manifest; `file` names it in errors.
    pub fn from_json(file: &str, text: &str) -> Result<Manifest, ManifestError> {
        let err = |field: &str, problem: String| ManifestError {
            file: file.to_owned(),
            field: field.to_owned(),
            problem,
        };
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(err(
                "(document)",
                format!("{} bytes; the limit is {MAX_MANIFEST_BYTES}", text.len()),
            ));
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let manifest: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
            // serde_path_to_error writes `?` for a segment it cannot name (a map key).
            let path = e.path().to_string();
            let known: Vec<&str> = path
                .split('.')
                .filter(|s| *s != "?" && !s.is_empty())
                .collect();
            let field = if known.is_empty() {
                "(document)".to_owned()
            } else {
                known.join(".")
            };
            err(&field, e.into_inner().to_string())
        })?;
        manifest
            .validate()
            .map_err(|(field, problem)| err(field, problem))?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !valid_app_id(&self.id) {
            return Err((
                "id",
                format!("{:?} is not an app id ([a-z][a-z0-9_-]{{0,31}})", self.id),
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > 64 {
            return Err(("name", "must be 1 to 64 bytes and not blank".into()));
        }
        if !valid_version(&self.version) {
            return Err((
                "version",
                format!(
                    "{:?} is not a semantic version (MAJOR.MINOR.PATCH)",
                    self.version
                ),
            ));
        }
        if let Some((cap, _)) = self
            .permissions
            .iter()
            .find(|(_, p)| p.reason().trim().is_empty() || p.reason().len() > 200)
        {
            return Err((
                "permissions",
                format!("the reason for `{cap}` must be 1 to 200 bytes and not blank"),
            ));
        }
        for (cap, permission) in &self.permissions {
            let Permission::Scoped(scope) = permission else {
                continue;
            };
            if !matches!(cap, Capability::VfsRead | Capability::VfsWrite) {
                return Err((
                    "permissions",
                    format!("`{cap}` cannot be limited to paths: only vfs_read and vfs_write can"),
                ));
            }
            if scope.paths.is_empty() || scope.paths.len() > MAX_SCOPE_PATHS {
                return Err((
                    "permissions",
                    format!(
                        "the paths of `{cap}` must be 1 to {MAX_SCOPE_PATHS} (give a plain reason \
                         for all of the user's files)"
                    ),
                ));
            }
            if let Some(problem) = scope.paths.iter().find_map(|p| scope_path_problem(p)) {
                return Err(("permissions", format!("a path of `{cap}`: {problem}")));
            }
        }
        if let Some(entry) = &self.entry
            && !valid_entry(entry)
        {
            return Err((
                "entry",
                format!("{entry:?} must be a relative path to a .wasm file inside the bundle"),
            ));
        }
        if let Some(limits) = &self.limits {
            if limits.memory_mb == Some(0) {
                return Err(("limits.memory_mb", "must be at least 1".into()));
            }
            if limits.timeout_ms == Some(0) {
                return Err(("limits.timeout_ms", "must be at least 1".into()));
            }
            if limits.output_kb == Some(0) {
                return Err(("limits.output_kb", "must be at least 1".into()));
            }
        }
        Ok(())
    }

    pub fn has(&self, cap: Capability) -> bool {
        self.permissions.contains_key(&cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{ "id": "editor", "name": "Code Editor", "version": "0.1.0",
        "permissions": { "vfs_read": "open files", "vfs_write": "save files" },
        "entry": null, "limits": { "memory_mb": 64, "timeout_ms": 10000, "output_kb": 1024 } }"#;

    fn refuse(text: &str) -> ManifestError {
        Manifest::from_json("manifests/x.json", text).unwrap_err()
    }

    #[test]
    fn a_good_manifest_parses() {
        let m = Manifest::from_json("editor.json", GOOD).unwrap();
        assert_eq!(m.id, "editor");
        assert!(m.has(Capability::VfsWrite));
        assert!(!m.has(Capability::VmRun));
        let again = serde_json::to_string(&m).unwrap();
        assert_eq!(Manifest::from_json("editor.json", &again).unwrap(), m);
    }

    #[test]
    fn a_file_capability_may_be_limited_to_paths() {
        let m = Manifest::from_json(
            "todo.json",
            r#"{ "id": "todo", "name": "To-do", "version": "1.0.0", "permissions": {
                "vfs_read": { "reason": "read your list", "paths": ["/todo.md"] },
                "vfs_write": "save anything" } }"#,
        )
        .unwrap();
        assert_eq!(m.permissions[&Capability::VfsRead].paths(), ["/todo.md"]);
        assert_eq!(
            m.permissions[&Capability::VfsRead].reason(),
            "read your list"
        );
        assert!(m.permissions[&Capability::VfsWrite].paths().is_empty());
        let again = serde_json::to_string(&m).unwrap();
        assert!(again.contains(r#""vfs_write":"save anything""#), "{again}");
        assert_eq!(Manifest::from_json("todo.json", &again).unwrap(), m);
        for (paths, says) in [
            (r#"["todo.md"]"#, "must start with `/`"),
            (r#"["/a/../b"]"#, "`..`"),
            (r#"["/a/[b"]"#, "not a glob"),
            (r#"[]"#, "must be 1 to"),
        ] {
            let e = refuse(&format!(
                r#"{{"id":"a","name":"A","version":"1.0.0","permissions":{{"vfs_read":{{"reason":"r","paths":{paths}}}}}}}"#
            ));
            assert!(e.problem.contains(says), "{paths}: {e}");
        }
        let e = refuse(
            r#"{"id":"a","name":"A","version":"1.0.0","permissions":{"chat":{"reason":"r","paths":["/x"]}}}"#,
        );
        assert!(e.problem.contains("cannot be limited"), "{e}");
    }

    #[test]
    fn a_scope_covers_its_files_and_folders_and_nothing_else() {
        let scope = PathScope::new(&[
            "/todo.md".to_owned(),
            "/notes/*.md".to_owned(),
            "/Documents/**".to_owned(),
        ])
        .unwrap();
        for inside in [
            "/todo.md",
            "/notes/a.md",
            "/Documents",
            "/Documents/x/y.txt",
        ] {
            assert!(scope.covers(inside), "{inside}");
        }
        for outside in [
            "/",
            "/todo.md.bak",
            "/secret.txt",
            "/notes/sub/a.md",
            "/notes",
            "/Documents2/x",
        ] {
            assert!(!scope.covers(outside), "{outside}");
        }
        assert!(scope.covers_tree("/Documents/x") && !scope.covers_tree("/notes"));
        assert!(!scope.covers_tree("/"));
        assert!(
            PathScope::new(&["/**".to_owned()])
                .unwrap()
                .covers_tree("/")
        );
    }

    #[test]
    fn bad_json_names_the_document() {
        let e = refuse("{ not json");
        assert_eq!(e.field, "(document)");
        assert!(
            e.to_string()
                .starts_with("manifests/x.json: field `(document)`")
        );
    }

    #[test]
    fn unknown_capability_names_the_field() {
        let e = refuse(r#"{"id":"a","name":"A","version":"1.0.0","permissions":{"vfs_raed":"x"}}"#);
        assert_eq!(e.field, "permissions");
        assert!(e.problem.contains("vfs_raed"), "{e}");
    }

    #[test]
    fn unknown_field_and_bad_values_are_named() {
        let e = refuse(r#"{"id":"a","name":"A","version":"1.0.0","perms":{}}"#);
        assert!(e.problem.contains("perms"), "{e}");
        assert_eq!(
            refuse(r#"{"id":"A!","name":"A","version":"1.0.0"}"#).field,
            "id"
        );
        assert_eq!(
            refuse(r#"{"id":"a","name":" ","version":"1.0.0"}"#).field,
            "name"
        );
        assert_eq!(
            refuse(r#"{"id":"a","name":"A","version":"1.0"}"#).field,
            "version"
        );
        assert_eq!(
            refuse(r#"{"id":"a","name":"A","version":"01.0.0"}"#).field,
            "version"
        );
        assert_eq!(
            refuse(r#"{"id":"a","name":"A","version":"1.0.0","entry":"../x.wasm"}"#).field,
            "entry"
        );
        assert_eq!(
            refuse(r#"{"id":"a","name":"A","version":"1.0.0","permissions":{"chat":""}}"#).field,
            "permissions"
        );
        assert_eq!(
            refuse(r#"{"id":"a","name":"A","version":"1.0.0","limits":{"memory_mb":0}}"#).field,
            "limits.memory_mb"
        );
        let e = refuse(r#"{"id":"a","name":"A","version":"1.0.0","limits":{"memory_mb":"big"}}"#);
        assert_eq!(e.field, "limits.memory_mb");
    }
}

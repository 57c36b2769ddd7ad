//! VFS paths: what a client may name, checked before anything touches the disk.
//!
//! A path is absolute inside the user's root (`/notes/todo.md`), with no empty,
//! `.` or `..` segment, no NUL or control characters, and no characters that
//! only look like a separator or a dot. Names are normalized to NFC, so two
//! spellings of one name are one file. The result is a relative path that the
//! confined directory handle (cap-std) resolves without ever leaving the root.

use std::fmt;
use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

pub const MAX_NAME_BYTES: usize = 255;
pub const MAX_PATH_BYTES: usize = 4096;

/// Characters that render like `/`, `\` or `.` and would let a name pass for a path.
const LOOK_ALIKES: &[char] = &[
    '\u{2215}', // DIVISION SLASH
    '\u{2044}', // FRACTION SLASH
    '\u{29F8}', // BIG SOLIDUS
    '\u{FF0F}', // FULLWIDTH SOLIDUS
    '\u{29F9}', // BIG REVERSE SOLIDUS
    '\u{FF3C}', // FULLWIDTH REVERSE SOLIDUS
    '\u{2024}', // ONE DOT LEADER
    '\u{2025}', // TWO DOT LEADER
    '\u{2026}', // HORIZONTAL ELLIPSIS
    '\u{FF0E}', // FULLWIDTH FULL STOP
    '\u{FE52}', // SMALL FULL STOP
    '\u{202E}', // RIGHT-TO-LEFT OVERRIDE (hides a name's real ending)
    '\u{202D}', // LEFT-TO-RIGHT OVERRIDE
    '\u{200B}', // ZERO WIDTH SPACE
    '\u{200C}', // ZERO WIDTH NON-JOINER
    '\u{200D}', // ZERO WIDTH JOINER
    '\u{FEFF}', // ZERO WIDTH NO-BREAK SPACE
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("a path must start with '/' (it is inside your own root): {0:?}")]
    NotAbsolute(String),
    #[error("the path is {0} bytes; the limit is {MAX_PATH_BYTES}")]
    TooLong(usize),
    #[error("a name is {0} bytes; the limit is {MAX_NAME_BYTES}")]
    NameTooLong(usize),
    #[error("the path has an empty segment ('//' or a trailing '/')")]
    EmptySegment,
    #[error("'.' and '..' are not allowed in a path")]
    DotSegment,
    #[error("the path contains a NUL or control character")]
    ControlChar,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the name {0:?} contains a character that looks like a '/' or '.' or hides text")]
    LookAlike(String),
}

/// A checked path inside a user's root. The root itself has no segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VfsPath {
    segments: Vec<String>,
}

impl VfsPath {
    pub fn root() -> VfsPath {
        VfsPath { segments: vec![] }
    }

    pub fn parse(raw: &str) -> Result<VfsPath, PathError> {
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong(raw.len()));
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PathError::NotAbsolute(raw.chars().take(64).collect()));
        };
        if rest.is_empty() {
            return Ok(VfsPath::root());
        }
        let mut segments = Vec::new();
        for segment in rest.split('/') {
            segments.push(check_name(segment)?);
        }
        VfsPath { segments }.within_limit()
    }

    /// Normalizing names can lengthen them (NFC is not always shorter), and a join adds a
    /// name: the path as kept is held to the limit too, not only the text it came from.
    fn within_limit(self) -> Result<VfsPath, PathError> {
        let bytes: usize = self.segments.iter().map(|s| s.len() + 1).sum();
        if bytes > MAX_PATH_BYTES {
            return Err(PathError::TooLong(bytes));
        }
        Ok(self)
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The path relative to the root, for the confined directory handle.
    pub fn relative(&self) -> PathBuf {
        if self.segments.is_empty() {
            PathBuf::from(".")
        } else {
            self.segments.iter().collect()
        }
    }

    pub fn parent(&self) -> Option<VfsPath> {
        if self.segments.is_empty() {
            return None;
        }
        Some(VfsPath {
            segments: self.segments[..self.segments.len() - 1].to_vec(),
        })
    }

    pub fn name(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }

    pub fn join(&self, name: &str) -> Result<VfsPath, PathError> {
        let mut segments = self.segments.clone();
        segments.push(check_name(name)?);
        VfsPath { segments }.within_limit()
    }

    /// Is `self` the same as `other` or inside it?
    pub fn starts_with(&self, other: &VfsPath) -> bool {
        self.segments.starts_with(&other.segments)
    }

    /// Rebuild from a path relative to the root (as found on disk), if it is a valid VFS path.
    pub fn from_relative(relative: &Path) -> Option<VfsPath> {
        let mut segments = vec![];
        for part in relative.components() {
            let std::path::Component::Normal(name) = part else {
                return None;
            };
            segments.push(check_name(name.to_str()?).ok()?);
        }
        Some(VfsPath { segments })
    }
}

fn check_name(segment: &str) -> Result<String, PathError> {
    if segment.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if segment.chars().any(char::is_control) {
        return Err(PathError::ControlChar);
    }
    if segment.contains('\\') {
        return Err(PathError::Backslash);
    }
    let name: String = segment.nfc().collect();
    if name == "." || name == ".." {
        return Err(PathError::DotSegment);
    }
    if name.contains(LOOK_ALIKES) {
        return Err(PathError::LookAlike(name.chars().take(64).collect()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(PathError::NameTooLong(name.len()));
    }
    Ok(name)
}

impl fmt::Display for VfsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.segments {
            write!(f, "/{segment}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths() {
        assert!(VfsPath::parse("/").unwrap().is_root());
        let p = VfsPath::parse("/notes/todo.md").unwrap();
        assert_eq!(p.to_string(), "/notes/todo.md");
        assert_eq!(p.relative(), PathBuf::from("notes/todo.md"));
        assert_eq!(p.parent().unwrap().to_string(), "/notes");
        assert_eq!(p.name(), Some("todo.md"));
        assert!(VfsPath::parse("/données/été .txt").is_ok());
        assert!(VfsPath::parse("/.hidden/..dots../a.b.c").is_ok());
    }

    #[test]
    fn names_are_normalized_to_nfc() {
        let composed = VfsPath::parse("/caf\u{e9}").unwrap();
        let decomposed = VfsPath::parse("/cafe\u{301}").unwrap();
        assert_eq!(composed, decomposed);
    }

    #[test]
    fn bad_paths_say_why() {
        use PathError::*;
        assert!(matches!(VfsPath::parse("notes"), Err(NotAbsolute(_))));
        assert!(matches!(VfsPath::parse(""), Err(NotAbsolute(_))));
        assert_eq!(VfsPath::parse("/a/../b"), Err(DotSegment));
        assert_eq!(VfsPath::parse("/.."), Err(DotSegment));
        assert_eq!(VfsPath::parse("/a/./b"), Err(DotSegment));
        assert_eq!(VfsPath::parse("//etc/passwd"), Err(EmptySegment));
        assert_eq!(VfsPath::parse("/a//b"), Err(EmptySegment));
        assert_eq!(VfsPath::parse("/a/"), Err(EmptySegment));
        assert_eq!(VfsPath::parse("/a\0b"), Err(ControlChar));
        assert_eq!(VfsPath::parse("/a\nb"), Err(ControlChar));
        assert_eq!(VfsPath::parse("/a\\..\\b"), Err(Backslash));
        assert!(matches!(VfsPath::parse("/\u{2025}"), Err(LookAlike(_))));
        assert!(matches!(
            VfsPath::parse("/etc\u{FF0F}passwd"),
            Err(LookAlike(_))
        ));
        assert!(matches!(
            VfsPath::parse("/report\u{202E}fdp.exe"),
            Err(LookAlike(_))
        ));
        assert_eq!(
            VfsPath::parse(&format!("/{}", "a".repeat(256))),
            Err(NameTooLong(256))
        );
        assert!(VfsPath::parse(&format!("/{}", "a".repeat(255))).is_ok());
        let long = "/a".repeat(2100);
        assert_eq!(VfsPath::parse(&long), Err(TooLong(4200)));
        // Found by fuzzing: U+0958 is 3 bytes and NFC makes it two characters of 3 bytes
        // each, so a path under the limit as sent grew past it as kept.
        let growing = format!("/{}", ["\u{958}"; 42].concat()).repeat(32);
        assert!(growing.len() <= MAX_PATH_BYTES);
        assert!(matches!(VfsPath::parse(&growing), Err(TooLong(n)) if n > MAX_PATH_BYTES));
        let deep = VfsPath::parse(&format!("/{}", ["a"; 2047].join("/"))).unwrap();
        assert!(matches!(deep.join("bc"), Err(TooLong(4097))));
    }

    #[test]
    fn containment() {
        let a = VfsPath::parse("/a").unwrap();
        let ab = VfsPath::parse("/a/b").unwrap();
        let abc = VfsPath::parse("/abc").unwrap();
        assert!(ab.starts_with(&a));
        assert!(a.starts_with(&a));
        assert!(!abc.starts_with(&a));
        assert!(a.starts_with(&VfsPath::root()));
    }
}

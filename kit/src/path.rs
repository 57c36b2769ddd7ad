//! Paths in a user's files as the apps handle them: absolute, `/`-separated, inside
//! the user's root. The daemon checks every path again; this only keeps what the apps
//! show and send tidy (`a/../b` becomes `/b`, never above `/`).

/// `/`-rooted, no `.`, `..`, empty or trailing parts.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `input` taken relative to `cwd` unless it starts with `/`; `~` is the root.
pub fn resolve(cwd: &str, input: &str) -> String {
    let input = input.strip_prefix('~').unwrap_or(input);
    if input.starts_with('/') {
        normalize(input)
    } else {
        normalize(&format!("{cwd}/{input}"))
    }
}

pub fn join(dir: &str, name: &str) -> String {
    normalize(&format!("{dir}/{name}"))
}

pub fn parent(path: &str) -> String {
    let path = normalize(path);
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

pub fn file_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        assert_eq!(normalize("a/../../b/./c/"), "/b/c");
        assert_eq!(normalize(""), "/");
        assert_eq!(resolve("/docs", "../x"), "/x");
        assert_eq!(resolve("/docs", "/etc"), "/etc");
        assert_eq!(resolve("/docs", "~/notes"), "/notes");
        assert_eq!(resolve("/docs", "../../.."), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
        assert_eq!(file_name("/a/b.txt"), "b.txt");
        assert_eq!(join("/", "x"), "/x");
    }
}

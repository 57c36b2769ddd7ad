//! A step's arguments for a person to review: every field in full, the ones naming files
//! first, text shown as the lines it holds (a newline is a new line, not `\n`).

use serde_json::Value;

/// Fields that say where: shown first.
const WHERE: [&str; 4] = ["path", "from", "to", "installed"];

/// `args` as lines for a review: `name: value`, text values over one line as a block.
pub fn detail(args: &Value) -> String {
    let Value::Object(fields) = args else {
        return serde_json::to_string_pretty(args).unwrap_or_default();
    };
    let mut names: Vec<&String> = fields.keys().collect();
    names.sort_by_key(|name| {
        (
            WHERE.iter().position(|w| w == name).unwrap_or(WHERE.len()),
            name.as_str(),
        )
    });
    let mut out = Vec::new();
    for name in names {
        match &fields[name] {
            Value::String(text) if text.contains('\n') || text.chars().count() > 60 => {
                out.push(format!(
                    "{name}: ({} bytes, {} lines)",
                    text.len(),
                    text.lines().count()
                ));
                out.extend(text.lines().map(|line| format!("  │ {line}")));
            }
            Value::String(text) => out.push(format!("{name}: {text}")),
            Value::Object(_) | Value::Array(_) => {
                let pretty = serde_json::to_string_pretty(&fields[name]).unwrap_or_default();
                out.push(format!("{name}:"));
                out.extend(pretty.lines().map(|line| format!("  {line}")));
            }
            other => out.push(format!("{name}: {other}")),
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_first_and_text_as_its_lines() {
        let shown = detail(&json!({ "data": "one\ntwo", "path": "/a.md", "append": true }));
        assert_eq!(
            shown,
            "path: /a.md\nappend: true\ndata: (7 bytes, 2 lines)\n  │ one\n  │ two"
        );
        assert_eq!(detail(&json!("x")), "\"x\"");
    }
}

//! Reading what the user types (JSON data, passwords) and printing answers and dates.

use std::io::{BufRead, IsTerminal};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::Failure;

/// Write to stdout; when the reader has gone, end quietly with status 141 (SIGPIPE's).
pub fn write_out(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("aetherctl: cannot write the answer: {e}");
        std::process::exit(1);
    }
}

/// Parse command-line JSON data; `-` reads stdin.
pub fn parse_data(data: Option<&str>) -> Result<Value, Failure> {
    let text = match data {
        None => return Ok(Value::Null),
        Some("-") => std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::Usage(format!("stdin: {e}")))?,
        Some(text) => text.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| {
        let looks_structured = text.trim_start().starts_with(['{', '[', '"']);
        let hint = if looks_structured {
            String::new()
        } else {
            format!("; to send a string, quote it: '\"{}\"'", text.trim())
        };
        Failure::Usage(format!("data must be JSON ({e}){hint}"))
    })
}

/// A password from the first line of stdin, or asked for on the terminal.
pub fn read_password(from_stdin: bool, prompt: &str) -> Result<String, Failure> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Usage(format!("stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| Failure::Usage(format!("cannot read the password: {e}")))?
    } else {
        return Err(Failure::Usage(
            "no terminal to ask for a password: use --password-stdin".into(),
        ));
    };
    if password.is_empty() {
        return Err(Failure::Usage("the password is empty".into()));
    }
    Ok(password)
}

/// A JSON value: one line with `--json`, else pretty-printed.
pub fn print_value(json: bool, value: &Value) {
    if json {
        outln!("{value}");
    } else {
        outln!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }
}

/// A typed answer as one line of JSON.
pub fn print_json<T: Serialize>(answer: &T) {
    match serde_json::to_string(answer) {
        Ok(line) => outln!("{line}"),
        Err(e) => eprintln!("aetherctl: cannot print the answer as JSON: {e}"),
    }
}

/// With `--json` the answer as JSON, else the line `human` makes of it.
pub fn print_answer<T: Serialize>(json: bool, answer: &T, human: impl FnOnce(&T) -> String) {
    if json {
        print_json(answer);
    } else {
        outln!("{}", human(answer));
    }
}

/// With `--json` the answer as JSON, else a line per row `rows` makes of it.
pub fn print_rows<T: Serialize>(json: bool, answer: &T, rows: impl FnOnce(&T) -> Vec<String>) {
    print_with(json, answer, |answer| {
        for row in rows(answer) {
            outln!("{row}");
        }
    });
}

/// With `--json` the answer as JSON, else as `human` prints it.
pub fn print_with<T: Serialize>(json: bool, answer: &T, human: impl FnOnce(&T)) {
    if json {
        print_json(answer);
    } else {
        human(answer);
    }
}

/// Seconds since the Unix epoch as RFC 3339, UTC, to the second.
pub fn format_secs(secs: i64) -> String {
    format_ms(secs.saturating_mul(1000))
}

/// Milliseconds since the Unix epoch as RFC 3339, UTC, to the second.
pub fn format_ms(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The name serde gives a unit variant (`snake_case` enums such as `Ending` or `Kind`).
pub fn name_of<T: Serialize + std::fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => format!("{value:?}"),
    }
}

/// `1 token`, `2 tokens`.
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_795_557_269_453), "2026-11-24T21:54:29Z");
        assert_eq!(format_secs(1_795_557_269), "2026-11-24T21:54:29Z");
    }

    #[test]
    fn enum_names_are_their_wire_names() {
        assert_eq!(
            name_of(&aether_proto::api::vm::Ending::MemoryLimit),
            "memory_limit"
        );
        assert_eq!(name_of(&aether_proto::api::vfs::Kind::Dir), "dir");
    }

    #[test]
    fn counts() {
        assert_eq!(count(1, "token", "tokens"), "1 token");
        assert_eq!(count(0, "token", "tokens"), "0 tokens");
    }
}

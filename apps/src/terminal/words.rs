//! Splitting a command line into words, the way a shell user expects: spaces separate,
//! quotes group, a backslash escapes.

/// The words of `line`, or why it cannot be split (an unclosed quote).
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => match chars.next() {
                Some(next) => {
                    word.push(next);
                    in_word = true;
                }
                None => return Err("the line ends with a backslash".into()),
            },
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("a {q} quote is not closed"));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A word as it would have to be typed to mean itself.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || "'\"\\".contains(c))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(split("ls  /a b").unwrap(), ["ls", "/a", "b"]);
        assert_eq!(
            split("cat 'my notes.txt'").unwrap(),
            ["cat", "my notes.txt"]
        );
        assert_eq!(
            split(r#"run x.wasm "a \"b\"" c\ d"#).unwrap(),
            ["run", "x.wasm", "a \"b\"", "c d"]
        );
        assert_eq!(split("echo ''").unwrap(), ["echo", ""]);
        assert!(split("cat 'oops").is_err());
        assert_eq!(split("   ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn quoting_round_trips() {
        for word in ["plain", "two words", "it's", ""] {
            assert_eq!(split(&quote(word)).unwrap(), [word]);
        }
    }
}

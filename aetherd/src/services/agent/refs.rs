//! References from a node's arguments to earlier nodes' results: `${node}` or
//! `${node.field.0.sub}`. A string that is exactly one reference becomes the value itself
//! (any JSON type); references inside a longer string become text; `$${` is a literal `${`.

use serde_json::Value;

/// One `${…}`: the node, and the path into its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub node: String,
    pub path: Vec<String>,
}

/// The pieces of a string: literal text and references, in order.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Ref(Reference),
}

fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("an unclosed `${{` in {text:?}"))?;
            let inner = tail[..end].trim();
            let mut steps = inner.split('.').map(str::trim);
            let node = steps.next().unwrap_or_default();
            if node.is_empty() || steps.clone().any(str::is_empty) {
                return Err(format!(
                    "`${{{inner}}}` is not a reference like `${{node.field}}`"
                ));
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Ref(Reference {
                node: node.to_owned(),
                path: steps.map(str::to_owned).collect(),
            }));
            rest = &tail[end + 1..];
        } else {
            literal.push('$');
            rest = &after[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// Every reference in `args`, or why one is malformed.
pub fn references(args: &Value) -> Result<Vec<Reference>, String> {
    let mut found = Vec::new();
    walk(args, &mut |text| {
        for piece in parse(text)? {
            if let Piece::Ref(r) = piece {
                found.push(r);
            }
        }
        Ok(())
    })?;
    Ok(found)
}

fn walk(value: &Value, visit: &mut impl FnMut(&str) -> Result<(), String>) -> Result<(), String> {
    match value {
        Value::String(text) => visit(text),
        Value::Array(items) => items.iter().try_for_each(|v| walk(v, visit)),
        Value::Object(fields) => fields.values().try_for_each(|v| walk(v, visit)),
        _ => Ok(()),
    }
}

/// The most a node's arguments may grow to once references are replaced.
pub const MAX_RESOLVED_BYTES: usize = 8 << 20;

/// `args` with every reference replaced, looking results up with `result_of`; refused
/// when the result would pass [`MAX_RESOLVED_BYTES`] (a reference repeated many times).
pub fn resolve(args: &Value, result_of: &impl Fn(&str) -> Option<Value>) -> Result<Value, String> {
    let mut budget = MAX_RESOLVED_BYTES;
    resolve_within(args, result_of, &mut budget)
}

fn spend(budget: &mut usize, value: &Value) -> Result<(), String> {
    let size = match value {
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    };
    *budget = budget.checked_sub(size).ok_or_else(|| {
        format!(
            "the arguments would grow past {} MiB once references are filled in",
            MAX_RESOLVED_BYTES >> 20
        )
    })?;
    Ok(())
}

fn resolve_within(
    args: &Value,
    result_of: &impl Fn(&str) -> Option<Value>,
    budget: &mut usize,
) -> Result<Value, String> {
    Ok(match args {
        Value::String(text) => {
            let pieces = parse(text)?;
            match pieces.as_slice() {
                [Piece::Ref(r)] => {
                    let value = lookup(r, result_of)?;
                    spend(budget, &value)?;
                    value
                }
                _ => {
                    let mut out = String::new();
                    for piece in pieces {
                        match piece {
                            Piece::Text(t) => out.push_str(&t),
                            Piece::Ref(r) => {
                                let value = lookup(&r, result_of)?;
                                spend(budget, &value)?;
                                match value {
                                    Value::String(s) => out.push_str(&s),
                                    other => out.push_str(&other.to_string()),
                                }
                            }
                        }
                    }
                    Value::String(out)
                }
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve_within(v, result_of, budget))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), resolve_within(v, result_of, budget)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

impl Reference {
    /// As written: `${node.path}`.
    pub fn written(&self) -> String {
        if self.path.is_empty() {
            format!("${{{}}}", self.node)
        } else {
            format!("${{{}.{}}}", self.node, self.path.join("."))
        }
    }
}

/// The value `r` names, looking results up with `result_of`.
pub fn lookup(r: &Reference, result_of: &impl Fn(&str) -> Option<Value>) -> Result<Value, String> {
    let mut value =
        result_of(&r.node).ok_or_else(|| format!("node {:?} has no result to refer to", r.node))?;
    for (i, step) in r.path.iter().enumerate() {
        let next = match &value {
            Value::Object(fields) => fields.get(step).cloned(),
            Value::Array(items) => step
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i).cloned()),
            _ => None,
        };
        value = next.ok_or_else(|| {
            format!(
                "`${{{}.{}}}`: the result of {:?} has no {:?}",
                r.node,
                r.path[..=i].join("."),
                r.node,
                step
            )
        })?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn results(node: &str) -> Option<Value> {
        match node {
            "list" => Some(json!({ "entries": [{ "name": "a.txt", "size": 3 }] })),
            "sum" => Some(json!({ "text": "short" })),
            _ => None,
        }
    }

    #[test]
    fn whole_references_keep_their_type_and_inner_ones_become_text() {
        let args = json!({
            "entry": "${list.entries.0}",
            "size": "${list.entries.0.size}",
            "line": "file ${list.entries.0.name}: ${sum.text} (${list.entries.0.size} B), costs $5 $${x}",
        });
        let found = references(&args).unwrap();
        assert_eq!(found.len(), 5);
        assert_eq!(found[0].node, "list");
        let resolved = resolve(&args, &results).unwrap();
        assert_eq!(resolved["entry"], json!({ "name": "a.txt", "size": 3 }));
        assert_eq!(resolved["size"], 3);
        assert_eq!(resolved["line"], "file a.txt: short (3 B), costs $5 ${x}");
    }

    #[test]
    fn a_reference_repeated_to_blow_up_memory_is_refused() {
        let big = "x".repeat(1 << 20);
        let result = |_: &str| Some(json!({ "data": big.clone() }));
        let args = Value::Array(vec![json!("${a.data}"); 100]);
        let err = resolve(&args, &result).unwrap_err();
        assert!(err.contains("grow past"), "{err}");
        assert!(resolve(&Value::Array(vec![json!("${a.data}"); 4]), &result).is_ok());
    }

    #[test]
    fn bad_and_missing_references_say_what_is_wrong() {
        assert!(
            references(&json!("${unclosed"))
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(references(&json!("${}")).is_err());
        assert!(references(&json!("${a..b}")).is_err());
        let missing = resolve(&json!("${gone.x}"), &results).unwrap_err();
        assert!(missing.contains("\"gone\" has no result"), "{missing}");
        let no_field = resolve(&json!("${sum.title}"), &results).unwrap_err();
        assert!(no_field.contains("no \"title\""), "{no_field}");
    }
}

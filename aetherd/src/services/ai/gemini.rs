//! Google Gemini's wire format: `POST {base}/models/{model}:streamGenerateContent?alt=sse`
//! (each event a `GenerateContentResponse`), and `:batchEmbedContents`. The key goes in
//! the `x-goog-api-key` header, never in the URL (URLs end up in logs).

use aether_proto::api::ai::{self, TokenUsage};
use serde_json::{Value, json};

use super::wire::{
    Endpoint, FunctionDecl, Piece, Pieces, Prompt, ProviderError, Turn, function_name, sse_pieces,
    stream_chunk,
};

pub async fn stream(provider: &Endpoint, prompt: &Prompt) -> Result<Pieces, ProviderError> {
    let mut body = json!({
        "contents": [{ "role": "user", "parts": [{ "text": prompt.prompt }] }],
    });
    if let Some(system) = &prompt.system {
        body["systemInstruction"] = json!({ "parts": [{ "text": system }] });
    }
    let mut config = serde_json::Map::new();
    if let Some(max) = prompt.max_tokens {
        config.insert("maxOutputTokens".into(), max.into());
    }
    if let Some(t) = prompt.temperature {
        config.insert("temperature".into(), t.into());
    }
    if let Some(schema) = &prompt.schema {
        config.insert("responseMimeType".into(), "application/json".into());
        config.insert("responseJsonSchema".into(), schema.clone());
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    let url = format!(
        "{}/models/{}:streamGenerateContent?alt=sse",
        provider.base_url, prompt.model
    );
    let response = provider.send(provider.post(url, &body)).await?;
    Ok(sse_pieces(response, parse_chunk))
}

/// One `GenerateContentResponse`: text in the first candidate's parts (thoughts left
/// out), `finishReason` when it is done, `usageMetadata` with the counts.
fn parse_chunk(data: &str) -> Result<Vec<Piece>, ProviderError> {
    let chunk = stream_chunk(data)?;
    let candidate = chunk
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    if candidate.is_none() {
        if let Some(reason) = chunk
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
        {
            return Err(ProviderError::Refused {
                status: 200,
                msg: format!("the prompt was blocked ({reason})"),
            });
        }
        if chunk.get("usageMetadata").is_none() {
            return Err(ProviderError::Malformed(format!(
                "a chunk with no candidates: {}",
                data.chars().take(200).collect::<String>()
            )));
        }
    }
    let mut pieces = Vec::new();
    if let Some(candidate) = candidate {
        for part in candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(text) = part.get("text").and_then(Value::as_str)
                && !text.is_empty()
            {
                pieces.push(Piece::Text(text.to_owned()));
            }
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            pieces.push(Piece::Finish(reason.to_owned()));
        }
    }
    if let Some(usage) = chunk.get("usageMetadata") {
        let count = |field: &str| usage.get(field).and_then(Value::as_u64).unwrap_or(0);
        pieces.push(Piece::Usage(TokenUsage {
            input: count("promptTokenCount"),
            output: count("candidatesTokenCount") + count("thoughtsTokenCount"),
        }));
    }
    Ok(pieces)
}

pub async fn embed(
    provider: &Endpoint,
    texts: &[String],
    model: &str,
) -> Result<(Vec<Vec<f32>>, TokenUsage), ProviderError> {
    let url = format!("{}/models/{model}:batchEmbedContents", provider.base_url);
    let requests: Vec<Value> = texts
        .iter()
        .map(|text| json!({ "model": format!("models/{model}"), "content": { "parts": [{ "text": text }] } }))
        .collect();
    let answer = provider
        .json(provider.post(url, &json!({ "requests": requests })))
        .await?;
    let embeddings = answer
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::Malformed("no `embeddings` in the answer".into()))?;
    if embeddings.len() != texts.len() {
        return Err(ProviderError::Malformed(format!(
            "{} texts, {} embeddings",
            texts.len(),
            embeddings.len()
        )));
    }
    let vectors = embeddings
        .iter()
        .map(|e| {
            e["values"]
                .as_array()?
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ProviderError::Malformed("an embedding is not a list of numbers".into()))?;
    // Gemini's embedding answer carries no token count.
    Ok((vectors, TokenUsage::default()))
}

/// One model turn of a chat with tools (`:generateContent`): the user's and tools' turns
/// in Gemini's form, a model turn it gave before sent back verbatim (its function calls
/// carry a `thoughtSignature` that must return unchanged), the tools as declarations.
/// The conversation as `generateContent` takes it: an assistant turn this provider
/// answered goes back exactly as it came; the results of one turn's calls go back together.
fn wire_contents(messages: &[ai::ChatMessage]) -> Vec<Value> {
    let mut contents: Vec<Value> = Vec::new();
    for m in messages {
        match m.role {
            ai::Role::User => {
                contents.push(json!({ "role": "user", "parts": [{ "text": m.text }] }));
            }
            ai::Role::Assistant => contents.push(match &m.raw {
                Some(raw) if raw.kind == ai::ProviderKind::Gemini => raw.content.clone(),
                _ => {
                    let mut parts = Vec::new();
                    if !m.text.is_empty() {
                        parts.push(json!({ "text": m.text }));
                    }
                    for call in &m.calls {
                        parts.push(json!({ "functionCall": {
                            "name": function_name(&call.tool), "args": call.args } }));
                    }
                    json!({ "role": "model", "parts": parts })
                }
            }),
            ai::Role::Tool => {
                let result: Value =
                    serde_json::from_str(&m.text).unwrap_or_else(|_| Value::String(m.text.clone()));
                let part = json!({ "functionResponse": {
                    "name": function_name(m.tool.as_deref().unwrap_or_default()),
                    "response": { "result": result } } });
                // The results of one turn's calls go back together, in one user turn.
                match contents.last_mut() {
                    Some(last)
                        if last["role"] == "user"
                            && last["parts"][0].get("functionResponse").is_some() =>
                    {
                        if let Some(parts) = last["parts"].as_array_mut() {
                            parts.push(part);
                        }
                    }
                    _ => contents.push(json!({ "role": "user", "parts": [part] })),
                }
            }
        }
    }
    contents
}

pub async fn chat_turn(
    provider: &Endpoint,
    model: &str,
    system: Option<&str>,
    messages: &[ai::ChatMessage],
    tools: &[FunctionDecl],
    max_tokens: Option<u32>,
) -> Result<Turn, ProviderError> {
    let contents = wire_contents(messages);
    let mut body = json!({ "contents": contents });
    if let Some(system) = system {
        body["systemInstruction"] = json!({ "parts": [{ "text": system }] });
    }
    if !tools.is_empty() {
        let declarations: Vec<Value> = tools
            .iter()
            .map(|t| {
                json!({ "name": t.name, "description": t.description,
                        "parametersJsonSchema": t.parameters })
            })
            .collect();
        body["tools"] = json!([{ "functionDeclarations": declarations }]);
    }
    if let Some(max) = max_tokens {
        body["generationConfig"] = json!({ "maxOutputTokens": max });
    }
    let url = format!("{}/models/{model}:generateContent", provider.base_url);
    let answer = provider.json(provider.post(url, &body)).await?;
    let content = answer
        .pointer("/candidates/0/content")
        .cloned()
        .ok_or_else(|| match answer.pointer("/promptFeedback/blockReason") {
            Some(reason) => ProviderError::Refused {
                status: 200,
                msg: format!("the prompt was blocked ({reason})"),
            },
            None => ProviderError::Malformed("no candidates[0].content in the answer".into()),
        })?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for (i, part) in content["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(call) = part.get("functionCall") {
            calls.push(ai::ToolCall {
                id: call["id"]
                    .as_str()
                    .map_or_else(|| format!("call-{i}"), str::to_owned),
                tool: call["name"].as_str().unwrap_or_default().to_owned(),
                args: call.get("args").cloned().unwrap_or(json!({})),
            });
        }
    }
    let count = |field: &str| {
        answer
            .pointer(&format!("/usageMetadata/{field}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok(Turn {
        text,
        calls,
        raw: content,
        usage: TokenUsage {
            input: count("promptTokenCount"),
            output: count("candidatesTokenCount") + count("thoughtsTokenCount"),
        },
    })
}

/// An image from `:generateContent` with image output, as (mime, base64 bytes).
pub async fn image(
    provider: &Endpoint,
    prompt: &str,
    model: &str,
) -> Result<(String, String), ProviderError> {
    let url = format!("{}/models/{model}:generateContent", provider.base_url);
    let body = json!({
        "contents": [{ "role": "user", "parts": [{ "text": prompt }] }],
        "generationConfig": { "responseModalities": ["TEXT", "IMAGE"] },
    });
    let answer = provider.json(provider.post(url, &body)).await?;
    answer
        .pointer("/candidates/0/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|part| {
            let inline = part.get("inlineData")?;
            Some((
                inline["mimeType"]
                    .as_str()
                    .unwrap_or("image/png")
                    .to_owned(),
                inline["data"].as_str()?.to_owned(),
            ))
        })
        .ok_or_else(|| {
            ProviderError::Malformed(
                "no image in the answer (is the model one that makes images?)".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_become_pieces_and_thoughts_stay_out() {
        let pieces = parse_chunk(
            r#"{"candidates":[{"content":{"role":"model","parts":[
                {"text":"pondering","thought":true},{"text":"Hello"}]}}]}"#,
        )
        .unwrap();
        assert_eq!(pieces, vec![Piece::Text("Hello".into())]);
        let last = parse_chunk(
            r#"{"candidates":[{"content":{"parts":[{"text":"!"}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2,"thoughtsTokenCount":1}}"#,
        )
        .unwrap();
        assert_eq!(
            last,
            vec![
                Piece::Text("!".into()),
                Piece::Finish("STOP".into()),
                Piece::Usage(TokenUsage {
                    input: 4,
                    output: 3
                }),
            ]
        );
        assert!(matches!(
            parse_chunk(r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#),
            Err(ProviderError::Refused { .. })
        ));
        assert!(matches!(
            parse_chunk("[1,2"),
            Err(ProviderError::Malformed(_))
        ));
    }
}

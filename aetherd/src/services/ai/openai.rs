//! OpenAI's chat-completions wire format, which Ollama, llama.cpp's server, vLLM and
//! most hosted services speak too: `POST {base}/chat/completions` with `stream: true`
//! (server-sent events, `[DONE]` at the end) and `POST {base}/embeddings`.

use aether_proto::api::ai::{self, TokenUsage};
use serde_json::{Value, json};

use super::wire::{
    Endpoint, FunctionDecl, Piece, Pieces, Prompt, ProviderError, Turn, function_name, sse_pieces,
    stream_chunk,
};

pub async fn stream(provider: &Endpoint, prompt: &Prompt) -> Result<Pieces, ProviderError> {
    let mut messages = Vec::new();
    if let Some(system) = &prompt.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    messages.push(json!({ "role": "user", "content": prompt.prompt }));
    let mut body = json!({
        "model": prompt.model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    if let Some(max) = prompt.max_tokens {
        body["max_tokens"] = max.into();
    }
    if let Some(t) = prompt.temperature {
        body["temperature"] = t.into();
    }
    if let Some(schema) = &prompt.schema {
        body["response_format"] = json!({
            "type": "json_schema",
            // Not `strict`: that mode takes only a subset of JSON Schema; the daemon checks the answer.
            "json_schema": { "name": "answer", "schema": schema, "strict": false },
        });
    }
    let url = format!("{}/chat/completions", provider.base_url);
    let response = provider.send(provider.post(url, &body)).await?;
    Ok(sse_pieces(response, parse_chunk))
}

/// One `chat.completion.chunk`: text in `choices[0].delta.content`, the reason it
/// stopped in `finish_reason`, token counts in `usage` (the last chunk).
fn parse_chunk(data: &str) -> Result<Vec<Piece>, ProviderError> {
    let chunk = stream_chunk(data)?;
    let mut pieces = Vec::new();
    let choices = chunk.get("choices").and_then(Value::as_array);
    if choices.is_none() && chunk.get("usage").is_none() {
        return Err(ProviderError::Malformed(format!(
            "a chunk with neither choices nor usage: {}",
            data.chars().take(200).collect::<String>()
        )));
    }
    if let Some(choice) = choices.and_then(|c| c.first()) {
        if let Some(text) = choice
            .pointer("/delta/content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            pieces.push(Piece::Text(text.to_owned()));
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            pieces.push(Piece::Finish(reason.to_owned()));
        }
    }
    if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
        pieces.push(Piece::Usage(TokenUsage {
            input: usage["prompt_tokens"].as_u64().unwrap_or(0),
            output: usage["completion_tokens"].as_u64().unwrap_or(0),
        }));
    }
    Ok(pieces)
}

pub async fn embed(
    provider: &Endpoint,
    texts: &[String],
    model: &str,
) -> Result<(Vec<Vec<f32>>, TokenUsage), ProviderError> {
    let url = format!("{}/embeddings", provider.base_url);
    let body = json!({ "model": model, "input": texts });
    let answer = provider.json(provider.post(url, &body)).await?;
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::Malformed("no `data` in the embeddings answer".into()))?;
    let mut vectors = vec![Vec::new(); texts.len()];
    for (position, item) in data.iter().enumerate() {
        let index = item["index"].as_u64().map_or(position, |i| i as usize);
        let vector = item["embedding"]
            .as_array()
            .ok_or_else(|| ProviderError::Malformed("an embedding is not a list".into()))?
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| ProviderError::Malformed("an embedding holds a non-number".into()))?;
        match vectors.get_mut(index) {
            Some(slot) => *slot = vector,
            None => {
                return Err(ProviderError::Malformed(format!(
                    "embedding index {index} out of range"
                )));
            }
        }
    }
    if vectors.iter().any(Vec::is_empty) {
        return Err(ProviderError::Malformed(format!(
            "{} texts, {} embeddings",
            texts.len(),
            data.len()
        )));
    }
    let usage = TokenUsage {
        input: answer
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output: 0,
    };
    Ok((vectors, usage))
}

/// One model turn of a chat with tools (not streamed): the messages in OpenAI's form (an
/// assistant message it gave before goes back as it was), the tools as functions.
/// One turn of the conversation as the chat completions API takes it (an assistant turn
/// this provider answered goes back exactly as it came).
fn wire_message(m: &ai::ChatMessage) -> Value {
    match m.role {
        ai::Role::User => json!({ "role": "user", "content": m.text }),
        ai::Role::Tool => json!({
            "role": "tool",
            "tool_call_id": m.call_id.clone().unwrap_or_default(),
            "content": m.text,
        }),
        ai::Role::Assistant => match &m.raw {
            Some(raw) if raw.kind == ai::ProviderKind::Openai => raw.content.clone(),
            _ => {
                let mut message = json!({ "role": "assistant", "content": m.text });
                if !m.calls.is_empty() {
                    message["tool_calls"] = m
                        .calls
                        .iter()
                        .map(|c| {
                            json!({ "id": c.id, "type": "function", "function": {
                                "name": function_name(&c.tool),
                                "arguments": c.args.to_string() } })
                        })
                        .collect();
                }
                message
            }
        },
    }
}

pub async fn chat_turn(
    provider: &Endpoint,
    model: &str,
    system: Option<&str>,
    messages: &[ai::ChatMessage],
    tools: &[FunctionDecl],
    max_tokens: Option<u32>,
) -> Result<Turn, ProviderError> {
    let mut wire = Vec::new();
    if let Some(system) = system {
        wire.push(json!({ "role": "system", "content": system }));
    }
    wire.extend(messages.iter().map(wire_message));
    let mut body = json!({ "model": model, "messages": wire });
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| {
                json!({ "type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters } })
            })
            .collect();
    }
    if let Some(max) = max_tokens {
        body["max_tokens"] = max.into();
    }
    let url = format!("{}/chat/completions", provider.base_url);
    let answer = provider.json(provider.post(url, &body)).await?;
    let message = answer
        .pointer("/choices/0/message")
        .cloned()
        .ok_or_else(|| ProviderError::Malformed("no choices[0].message in the answer".into()))?;
    let text = message["content"].as_str().unwrap_or_default().to_owned();
    let calls = message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, call)| {
            let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
            ai::ToolCall {
                id: call["id"]
                    .as_str()
                    .map_or_else(|| format!("call-{i}"), str::to_owned),
                tool: call
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                // Arguments that are not JSON stay text: the loop tells the model so.
                args: arguments
                    .map(|a| {
                        serde_json::from_str(a).unwrap_or_else(|_| Value::String(a.to_owned()))
                    })
                    .unwrap_or(Value::Null),
            }
        })
        .collect();
    let usage = TokenUsage {
        input: answer
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output: answer
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    Ok(Turn {
        text,
        calls,
        raw: message,
        usage,
    })
}

/// An image from `POST {base}/images/generations`, as (mime, base64 bytes). Only an image
/// in the answer itself is taken: a URL to fetch elsewhere is refused.
pub async fn image(
    provider: &Endpoint,
    prompt: &str,
    model: &str,
) -> Result<(String, String), ProviderError> {
    let url = format!("{}/images/generations", provider.base_url);
    let body = json!({ "model": model, "prompt": prompt, "n": 1 });
    let answer = provider.json(provider.post(url, &body)).await?;
    let first = answer.pointer("/data/0").cloned().unwrap_or(Value::Null);
    match (first["b64_json"].as_str(), first["url"].as_str()) {
        (Some(data), _) => Ok(("image/png".into(), data.to_owned())),
        (None, Some(_)) => Err(ProviderError::Malformed(
            "the image came as a URL; aetherd saves only images sent in the answer".into(),
        )),
        (None, None) => Err(ProviderError::Malformed("no image in the answer".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_become_pieces() {
        let text = parse_chunk(
            r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
        )
        .unwrap();
        assert_eq!(text, vec![Piece::Text("Hel".into())]);
        let end =
            parse_chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#).unwrap();
        assert_eq!(end, vec![Piece::Finish("stop".into())]);
        let usage = parse_chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#,
        )
        .unwrap();
        assert_eq!(
            usage,
            vec![Piece::Usage(TokenUsage {
                input: 3,
                output: 5
            })]
        );
        assert!(matches!(
            parse_chunk("{not json"),
            Err(ProviderError::Malformed(_))
        ));
        assert!(matches!(
            parse_chunk(r#"{"what":1}"#),
            Err(ProviderError::Malformed(_))
        ));
        assert!(matches!(
            parse_chunk(r#"{"error":{"message":"overloaded"}}"#),
            Err(ProviderError::Server { .. })
        ));
    }
}

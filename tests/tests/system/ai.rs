//! `ai.*` against a scripted provider on 127.0.0.1 speaking each wire format: text streams
//! live as events; structured output comes back parsed; rate limits and server errors are
//! retried (honouring `Retry-After`); malformed, cut, unreachable and silent providers fail
//! clearly; cancelling and leaving stop a stream; usage is counted and the quota holds;
//! with no provider, every call says how to configure one.

use std::time::{Duration, Instant};

use aether_proto::ErrorCode;
use aether_proto::api::ai::{self, GenerateAnswer, ProviderKind};
use aether_proto::client::{AppHandle, Subscription};
use aether_tests::fake_llm::{FakeLlm, Reply};
use aether_tests::{TestDaemon, expect_code, next_msg, wait_until};
use aetherd::config::{AiProvider, Config};
use serde_json::{Value, json};

const KEY: &str = "sk-test-secret";

fn provider(name: &str, kind: ProviderKind, base_url: String) -> AiProvider {
    AiProvider {
        name: name.into(),
        kind,
        base_url: Some(base_url),
        model: match kind {
            ProviderKind::Gemini => "gemini-test".into(),
            ProviderKind::Openai => "gpt-test".into(),
        },
        embed_model: Some("embed-test".into()),
        api_key_env: None,
        api_key: Some(KEY.to_owned().into()),
    }
}

/// A daemon whose one provider is `fake`, speaking OpenAI's format under `/v1`.
async fn with_openai(fake: &FakeLlm, edit: impl FnOnce(&mut Config)) -> TestDaemon {
    let url = fake.url("/v1");
    TestDaemon::start_with(move |c| {
        c.ai.providers
            .push(provider("local", ProviderKind::Openai, url));
        c.ai.max_retries = 2;
        edit(c);
    })
    .await
}

fn chunk(text: &str) -> Value {
    json!({ "object": "chat.completion.chunk",
            "choices": [{ "index": 0, "delta": { "content": text }, "finish_reason": null }] })
}

fn finish() -> Value {
    json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }] })
}

fn usage(input: u64, output: u64) -> Value {
    json!({ "choices": [], "usage": { "prompt_tokens": input, "completion_tokens": output } })
}

fn hello() -> Reply {
    Reply::events([chunk("Hello, "), chunk("world"), finish(), usage(3, 5)])
}

fn ask(prompt: &str) -> ai::Generate {
    ai::Generate {
        prompt: prompt.into(),
        stream: true,
        ..Default::default()
    }
}

fn whole(prompt: &str) -> ai::Generate {
    ai::Generate {
        stream: false,
        ..ask(prompt)
    }
}

async fn done(app: &AppHandle, request: ai::Generate) -> ai::Generated {
    match app.request(&request).await {
        Ok(GenerateAnswer::Done(done)) => done,
        other => panic!("expected the whole answer, got {other:?}"),
    }
}

/// Every event of one stream, in order, through its `done` or `error`.
async fn read_stream(sub: &mut Subscription, stream: &str) -> (Vec<ai::Delta>, Value) {
    let mut deltas = Vec::new();
    loop {
        let msg = next_msg(sub).await;
        let Some(rest) = msg.topic.strip_prefix(&format!("ai.stream.{stream}.")) else {
            continue;
        };
        let data: Value = serde_json::from_str(msg.data.get()).unwrap();
        match rest {
            "delta" => deltas.push(serde_json::from_value(data).unwrap()),
            "done" | "error" => return (deltas, json!({ rest: data })),
            "notice" => {}
            other => panic!("unexpected event {other}"),
        }
    }
}

async fn started(app: &AppHandle, request: ai::Generate) -> ai::StreamStarted {
    match app.request(&request).await {
        Ok(GenerateAnswer::Streaming(started)) => started,
        other => panic!("expected a stream, got {other:?}"),
    }
}

#[tokio::test]
async fn with_no_provider_every_ai_call_says_how_to_configure_one() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    let msg = expect_code(cli.request(&ask("hi")).await, ErrorCode::Unavailable);
    assert!(
        msg.contains("GEMINI_API_KEY") && msg.contains("ai.providers"),
        "{msg}"
    );
    expect_code(
        cli.request(&ai::Embed {
            texts: vec!["x".into()],
            ..Default::default()
        })
        .await,
        ErrorCode::Unavailable,
    );
    let status = cli.request(&ai::Status { probe: true }).await.unwrap();
    assert!(status.providers.is_empty() && status.default.is_none());
    assert!(status.hint.unwrap().contains("OPENAI_BASE_URL"));
}

#[tokio::test]
async fn text_streams_live_as_events_and_usage_is_counted_per_app() {
    let fake = FakeLlm::start().await;
    let pause = Duration::from_millis(150);
    fake.then(Reply::Events {
        events: vec![
            (Duration::ZERO, chunk("Hello, ").to_string()),
            (pause, chunk("world").to_string()),
            (pause, finish().to_string()),
            (Duration::ZERO, usage(3, 5).to_string()),
        ],
        cut: false,
    });
    let daemon = with_openai(&fake, |_| {}).await;
    let client = daemon.owner().await;
    let cli = client.app("cli");
    let mut sub = cli.subscribe(ai::STREAMS).await.unwrap();
    let asked = Instant::now();
    let stream = started(
        &cli,
        ai::Generate {
            system: Some("be brief".into()),
            ..ask("greet")
        },
    )
    .await;
    assert_eq!(
        (stream.provider.as_str(), stream.model.as_str()),
        ("local", "gpt-test")
    );
    let first = next_msg(&mut sub).await;
    assert!(first.topic.ends_with(".delta"), "{}", first.topic);
    assert!(
        asked.elapsed() < pause,
        "the first piece arrived while the rest was still coming ({:?})",
        asked.elapsed()
    );
    let (deltas, end) = read_stream(&mut sub, &stream.stream).await;
    assert_eq!(deltas.len(), 1, "one more piece after the first");
    assert_eq!(deltas[0].seq, 1);
    let done: ai::Generated = serde_json::from_value(end["done"].clone()).unwrap();
    assert_eq!(done.text, "Hello, world");
    assert_eq!(
        done.usage,
        ai::TokenUsage {
            input: 3,
            output: 5
        }
    );
    assert_eq!(done.finish.as_deref(), Some("stop"));

    let seen = &fake.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        seen.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(seen.body["stream"], true);
    assert_eq!(seen.body["model"], "gpt-test");
    assert_eq!(
        seen.body["messages"][0],
        json!({ "role": "system", "content": "be brief" })
    );
    assert_eq!(
        seen.body["messages"][1],
        json!({ "role": "user", "content": "greet" })
    );

    let status = cli.request(&ai::Status::default()).await.unwrap();
    assert_eq!(status.default.as_deref(), Some("local"));
    assert!(status.providers[0].has_key);
    let text = serde_json::to_string(&status).unwrap();
    assert!(
        !text.contains(KEY),
        "the key never leaves the daemon: {text}"
    );
    wait_until(
        "the usage to be counted",
        Duration::from_secs(2),
        async || {
            let status = cli.request(&ai::Status::default()).await.unwrap();
            status.usage
                == vec![ai::Usage {
                    app: "cli".into(),
                    requests: 1,
                    input_tokens: 3,
                    output_tokens: 5,
                }]
        },
    )
    .await;
}

#[tokio::test]
async fn gemini_structured_output_comes_back_parsed_and_the_key_stays_out_of_the_url() {
    let fake = FakeLlm::start().await;
    fake.then(Reply::events([
        json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": "{\"accent\":" }] } }] }),
        json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": " \"teal\"}" }] },
                "finishReason": "STOP" }],
                "usageMetadata": { "promptTokenCount": 7, "candidatesTokenCount": 4 } }),
    ]));
    let url = fake.url("/v1beta");
    let daemon = TestDaemon::start_with(move |c| {
        c.ai.providers
            .push(provider("gem", ProviderKind::Gemini, url));
    })
    .await;
    let cli = daemon.owner().await.app("cli");
    let schema = json!({ "type": "object", "properties": { "accent": { "type": "string" } } });
    let answer = done(
        &cli,
        ai::Generate {
            schema: Some(schema.clone()),
            max_tokens: Some(50),
            ..whole("a calm theme")
        },
    )
    .await;
    assert_eq!(answer.json, Some(json!({ "accent": "teal" })));
    assert_eq!(
        answer.usage,
        ai::TokenUsage {
            input: 7,
            output: 4
        }
    );
    let seen = &fake.seen()[0];
    assert_eq!(
        seen.path,
        "/v1beta/models/gemini-test:streamGenerateContent?alt=sse"
    );
    assert_eq!(seen.header("x-goog-api-key"), Some(KEY));
    assert!(!seen.path.contains(KEY));
    assert_eq!(seen.body["generationConfig"]["responseJsonSchema"], schema);
    assert_eq!(seen.body["generationConfig"]["maxOutputTokens"], 50);
    assert_eq!(seen.body["contents"][0]["parts"][0]["text"], "a calm theme");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_honouring_retry_after() {
    let fake = FakeLlm::start().await;
    fake.then(Reply::Json {
        status: 429,
        headers: vec![("retry-after".into(), "1".into())],
        body: json!({ "error": { "message": "slow down" } }).to_string(),
    })
    .then(Reply::json(
        503,
        json!({ "error": { "message": "overloaded" } }),
    ))
    .then(hello());
    let daemon = with_openai(&fake, |_| {}).await;
    let cli = daemon.owner().await.app("cli");
    let asked = Instant::now();
    let answer = done(&cli, whole("hi")).await;
    assert_eq!(answer.text, "Hello, world");
    assert_eq!(fake.seen().len(), 3);
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "the Retry-After second was waited"
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_daemon_waits_fails_at_once_with_the_wait() {
    let fake = FakeLlm::start().await;
    fake.then(Reply::Json {
        status: 429,
        headers: vec![("retry-after".into(), "3600".into())],
        body: json!({ "error": { "message": "daily limit" } }).to_string(),
    });
    let daemon = with_openai(&fake, |_| {}).await;
    let cli = daemon.owner().await.app("cli");
    match cli.request(&whole("hi")).await {
        Err(aether_proto::client::ClientError::Daemon(body)) => {
            assert_eq!(body.code, ErrorCode::RateLimited);
            assert_eq!(body.retry_after_ms, Some(3_600_000));
            assert!(body.msg.contains("daily limit"), "{}", body.msg);
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn malformed_cut_and_refused_answers_fail_clearly() {
    let fake = FakeLlm::start().await;
    fake.then(Reply::Events {
        events: vec![(Duration::ZERO, "this is not json".into())],
        cut: false,
    })
    .then(Reply::Events {
        events: vec![(Duration::ZERO, chunk("Hel").to_string())],
        cut: true,
    })
    .then(Reply::json(
        401,
        json!({ "error": { "message": "invalid api key" } }),
    ))
    .then(Reply::json(
        400,
        json!({ "error": { "message": "model gpt-nope does not exist" } }),
    ));
    let daemon = with_openai(&fake, |_| {}).await;
    let cli = daemon.owner().await.app("cli");
    let msg = expect_code(cli.request(&whole("a")).await, ErrorCode::Unavailable);
    assert!(msg.contains("not in the provider's format"), "{msg}");
    // Streamed, the failure is the stream's last event, after what did arrive.
    let mut sub = cli.subscribe(ai::STREAMS).await.unwrap();
    let stream = started(&cli, ask("b")).await;
    let (deltas, end) = read_stream(&mut sub, &stream.stream).await;
    assert_eq!(deltas[0].text, "Hel");
    assert_eq!(end["error"]["code"], "unavailable");
    assert!(
        end["error"]["msg"]
            .as_str()
            .unwrap()
            .contains("ended before the answer did"),
        "{end}"
    );
    let msg = expect_code(cli.request(&whole("c")).await, ErrorCode::Unavailable);
    assert!(
        msg.contains("invalid api key") && msg.contains("key"),
        "{msg}"
    );
    let msg = expect_code(
        cli.request(&ai::Generate {
            model: Some("gpt-nope".into()),
            ..whole("d")
        })
        .await,
        ErrorCode::BadFrame,
    );
    assert!(msg.contains("does not exist"), "{msg}");
    assert_eq!(fake.seen().len(), 4, "none of these is retried");
}

#[tokio::test]
async fn a_provider_that_is_down_or_silent_gives_a_clear_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let fake = FakeLlm::start().await;
    // Silent on the first try and on the retry.
    fake.then(Reply::Silence).then(Reply::Silence);
    let silent = fake.url("/v1");
    let daemon = TestDaemon::start_with(move |c| {
        c.ai.providers
            .push(provider("down", ProviderKind::Openai, down));
        c.ai.providers
            .push(provider("silent", ProviderKind::Openai, silent));
        c.ai.max_retries = 1;
        c.ai.idle_timeout_ms = 300;
    })
    .await;
    let cli = daemon.owner().await.app("cli");
    let msg = expect_code(cli.request(&whole("a")).await, ErrorCode::Unavailable);
    assert!(
        msg.contains("\"down\"") && msg.contains("cannot reach"),
        "{msg}"
    );
    let started = Instant::now();
    expect_code(
        cli.request(&ai::Generate {
            provider: Some("silent".into()),
            ..whole("b")
        })
        .await,
        ErrorCode::Timeout,
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let status = cli.request(&ai::Status { probe: true }).await.unwrap();
    assert_eq!(status.providers[0].reachable, Some(false));
    assert!(status.providers[0].error.is_some());
}

#[tokio::test]
async fn bad_requests_are_refused_before_any_provider_is_asked() {
    let fake = FakeLlm::start().await;
    let daemon = with_openai(&fake, |_| {}).await;
    let cli = daemon.owner().await.app("cli");
    let msg = expect_code(
        cli.request(&whole(&"x".repeat(ai::MAX_PROMPT_BYTES + 1)))
            .await,
        ErrorCode::TooLarge,
    );
    assert!(msg.contains("1 MiB"), "{msg}");
    let msg = expect_code(
        cli.request(&ai::Generate {
            provider: Some("nope".into()),
            ..whole("a")
        })
        .await,
        ErrorCode::NotFound,
    );
    assert!(msg.contains("configured: local"), "{msg}");
    for bad in [
        ai::Generate {
            temperature: Some(5.0),
            ..whole("a")
        },
        ai::Generate {
            schema: Some(json!("not a schema")),
            ..whole("a")
        },
        whole("   "),
        // A model name goes into a provider's URL: nothing but a name is taken.
        ai::Generate {
            model: Some("../../admin#".into()),
            ..whole("a")
        },
    ] {
        expect_code(cli.request(&bad).await, ErrorCode::BadFrame);
    }
    let raw = cli
        .request_json::<_, Value>("ai.generate", &json!({ "prompt": 5 }))
        .await;
    expect_code(raw, ErrorCode::BadFrame);
    expect_code(
        cli.request(&ai::Embed {
            texts: vec!["x".into(); ai::MAX_EMBED_TEXTS + 1],
            ..Default::default()
        })
        .await,
        ErrorCode::TooLarge,
    );
    assert!(fake.seen().is_empty());
    // An app without `ai_access` is refused by the permission check.
    let files = daemon.owner().await.app("files");
    expect_code(files.request(&whole("a")).await, ErrorCode::Forbidden);
}

#[tokio::test]
async fn cancel_stops_a_stream_and_only_its_owner_can() {
    let fake = FakeLlm::start().await;
    fake.then(Reply::Events {
        events: (0..50)
            .map(|i| {
                (
                    Duration::from_millis(100),
                    chunk(&i.to_string()).to_string(),
                )
            })
            .collect(),
        cut: false,
    });
    let daemon = with_openai(&fake, |_| {}).await;
    daemon.add_user("mallory", "correct horse battery").await;
    let cli = daemon.owner().await.app("cli");
    let mut sub = cli.subscribe(ai::STREAMS).await.unwrap();
    let stream = started(&cli, ask("count")).await;
    next_msg(&mut sub).await;
    let other = daemon
        .sign_in("mallory", "correct horse battery")
        .await
        .app("cli");
    let theirs = other
        .request(&ai::Cancel {
            stream: stream.stream.clone(),
        })
        .await
        .unwrap();
    assert!(!theirs.cancelled, "another user cannot stop it");
    let mine = cli
        .request(&ai::Cancel {
            stream: stream.stream.clone(),
        })
        .await
        .unwrap();
    assert!(mine.cancelled);
    let (_, end) = read_stream(&mut sub, &stream.stream).await;
    assert_eq!(end["error"]["code"], "cancelled");
    // What it wrote before the cancel still counts (estimated: the provider never said).
    wait_until(
        "the usage to be counted",
        Duration::from_secs(2),
        async || {
            let status = cli.request(&ai::Status::default()).await.unwrap();
            status
                .usage
                .first()
                .is_some_and(|u| u.requests == 1 && u.input_tokens > 0 && u.output_tokens > 0)
        },
    )
    .await;
    let again = cli
        .request(&ai::Cancel {
            stream: stream.stream,
        })
        .await
        .unwrap();
    assert!(!again.cancelled, "it had ended");
}

#[tokio::test]
async fn a_stream_nobody_listens_to_stops() {
    let fake = FakeLlm::start().await;
    fake.then(Reply::Events {
        events: (0..60)
            .map(|i| (Duration::from_millis(50), chunk(&i.to_string()).to_string()))
            .collect(),
        cut: false,
    });
    let daemon = with_openai(&fake, |c| c.ai.abandon_after_ms = 200).await;
    let cli = daemon.owner().await.app("cli");
    // Asked, and nobody subscribed: as if the client had gone.
    started(&cli, ask("count")).await;
    wait_until(
        "the abandoned stream to stop and be counted",
        Duration::from_secs(2),
        async || {
            let status = cli.request(&ai::Status::default()).await.unwrap();
            status.usage.first().is_some_and(|u| u.requests == 1)
        },
    )
    .await;
}

#[tokio::test]
async fn the_daily_quota_stops_a_user_who_spent_it() {
    let fake = FakeLlm::start().await;
    fake.then(hello());
    let daemon = with_openai(&fake, |c| c.ai.daily_token_quota = Some(8)).await;
    let cli = daemon.owner().await.app("cli");
    done(&cli, whole("hi")).await;
    let msg = expect_code(cli.request(&whole("again")).await, ErrorCode::QuotaExceeded);
    assert!(msg.contains("8 of your 8"), "{msg}");
    let status = cli.request(&ai::Status::default()).await.unwrap();
    assert_eq!(status.daily_token_quota, Some(8));
}

#[tokio::test]
async fn embeddings_in_both_formats() {
    let openai = FakeLlm::start().await;
    openai.then(Reply::json(
        200,
        json!({ "object": "list", "model": "embed-test", "usage": { "prompt_tokens": 4, "total_tokens": 4 },
                "data": [ { "index": 1, "embedding": [0.0, 1.0] }, { "index": 0, "embedding": [1.0, 0.0] } ] }),
    ));
    let gemini = FakeLlm::start().await;
    gemini.then(Reply::json(
        200,
        json!({ "embeddings": [ { "values": [0.5, 0.5] }, { "values": [0.25, 0.75] } ] }),
    ));
    let (a, b) = (openai.url("/v1"), gemini.url("/v1beta"));
    let daemon = TestDaemon::start_with(move |c| {
        c.ai.providers.push(provider("o", ProviderKind::Openai, a));
        c.ai.providers.push(provider("g", ProviderKind::Gemini, b));
        let mut bare = provider("bare", ProviderKind::Openai, "http://127.0.0.1:9/v1".into());
        bare.embed_model = None;
        c.ai.providers.push(bare);
    })
    .await;
    let cli = daemon.owner().await.app("cli");
    let texts = vec!["first".to_owned(), "second".to_owned()];
    let o = cli
        .request(&ai::Embed {
            texts: texts.clone(),
            provider: Some("o".into()),
            model: None,
        })
        .await
        .unwrap();
    assert_eq!(
        o.vectors,
        vec![vec![1.0, 0.0], vec![0.0, 1.0]],
        "in the texts' order"
    );
    assert_eq!(o.usage.input, 4);
    assert_eq!(openai.seen()[0].path, "/v1/embeddings");
    assert_eq!(openai.seen()[0].body["input"], json!(texts));
    let g = cli
        .request(&ai::Embed {
            texts: texts.clone(),
            provider: Some("g".into()),
            model: None,
        })
        .await
        .unwrap();
    assert_eq!(g.vectors[1], vec![0.25, 0.75]);
    assert_eq!(
        gemini.seen()[0].path,
        "/v1beta/models/embed-test:batchEmbedContents"
    );
    let msg = expect_code(
        cli.request(&ai::Embed {
            texts,
            provider: Some("bare".into()),
            model: None,
        })
        .await,
        ErrorCode::Unavailable,
    );
    assert!(msg.contains("no embed_model"), "{msg}");
}

fn user(text: &str) -> ai::ChatMessage {
    ai::ChatMessage {
        role: ai::Role::User,
        text: text.into(),
        calls: vec![],
        call_id: None,
        tool: None,
        raw: None,
    }
}

#[tokio::test]
async fn a_chat_calls_bus_tools_as_the_app_and_bad_calls_come_back_as_errors() {
    let fake = FakeLlm::start().await;
    let call = |id: &str, name: &str, args: &str| json!({ "id": id, "type": "function", "function": { "name": name, "arguments": args } });
    // Turn 1: read a file, call a tool not offered, and pass arguments that are not JSON.
    fake.then(Reply::json(
        200,
        json!({ "choices": [{ "index": 0, "finish_reason": "tool_calls",
        "message": { "role": "assistant", "content": null, "tool_calls": [
            call("c1", "vfs_read", r#"{"path":"/notes.txt"}"#),
            call("c2", "vfs_remove", r#"{"path":"/notes.txt"}"#),
            call("c3", "vfs_list", "{not json"),
        ] } }], "usage": { "prompt_tokens": 10, "completion_tokens": 5 } }),
    ))
    .then(Reply::json(
        200,
        json!({ "choices": [{ "index": 0, "finish_reason": "stop",
            "message": { "role": "assistant", "content": "Your notes say: buy milk." } }],
            "usage": { "prompt_tokens": 30, "completion_tokens": 7 } }),
    ));
    let daemon = with_openai(&fake, |_| {}).await;
    let cli = daemon.owner().await.app("cli");
    cli.request(&aether_proto::api::vfs::Write {
        path: "/notes.txt".into(),
        data: "buy milk".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let chatted = cli
        .request(&ai::Chat {
            messages: vec![user("what do my notes say?")],
            tools: vec!["vfs.read".into(), "vfs.list".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(chatted.text, "Your notes say: buy milk.");
    assert_eq!(chatted.steps, 2);
    assert_eq!(
        chatted.usage,
        ai::TokenUsage {
            input: 40,
            output: 12
        }
    );
    // The assistant's call, then three results, then its answer.
    assert_eq!(chatted.messages.len(), 5);
    assert_eq!(chatted.messages[0].calls[0].tool, "vfs.read");
    let results: Vec<&str> = chatted.messages[1..4]
        .iter()
        .map(|m| m.text.as_str())
        .collect();
    assert!(results[0].contains("buy milk"), "{results:?}");
    assert!(
        results[1].contains("no tool") && results[1].contains("not_found"),
        "{results:?}"
    );
    assert!(results[2].contains("bad_frame"), "{results:?}");
    let second = &fake.seen()[1].body;
    assert_eq!(second["tools"].as_array().unwrap().len(), 2);
    assert_eq!(second["tools"][0]["function"]["name"], "vfs_read");
    assert_eq!(
        second["messages"][1]["tool_calls"][0]["id"], "c1",
        "the model's turn as it gave it"
    );
    assert_eq!(second["messages"][2]["role"], "tool");
    assert_eq!(second["messages"][2]["tool_call_id"], "c1");
    // The file is still there: the call of a tool not offered did nothing.
    assert!(
        cli.request(&aether_proto::api::vfs::Stat {
            path: "/notes.txt".into()
        })
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn gemini_function_calls_keep_their_thought_signature_and_permissions_hold() {
    let fake = FakeLlm::start().await;
    let signed = json!({ "role": "model", "parts": [
        { "functionCall": { "name": "vfs_write", "args": { "path": "/x.txt", "data": "x" } },
          "thoughtSignature": "c2lnbmVkLWJ5LWdlbWluaQ==" } ] });
    fake.then(Reply::json(
        200,
        json!({ "candidates": [{ "content": signed.clone(), "finishReason": "STOP" }],
            "usageMetadata": { "promptTokenCount": 3, "candidatesTokenCount": 2 } }),
    ))
    .then(Reply::json(
        200,
        json!({ "candidates": [{ "content": { "role": "model",
            "parts": [{ "text": "I may not write files." }] }, "finishReason": "STOP" }] }),
    ));
    let url = fake.url("/v1beta");
    let daemon = TestDaemon::start_with(move |c| {
        c.ai.providers
            .push(provider("gem", ProviderKind::Gemini, url));
    })
    .await;
    // The Agent Console may use the AI and read files, not write them.
    let console = daemon.owner().await.app("agents");
    let chatted = console
        .request(&ai::Chat {
            messages: vec![user("write x")],
            tools: vec!["vfs.write".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        chatted.messages[1].text.contains("forbidden"),
        "{:?}",
        chatted.messages[1]
    );
    let second = &fake.seen()[1].body;
    assert_eq!(
        second["contents"][1], signed,
        "the model's turn goes back verbatim"
    );
    assert_eq!(
        second["contents"][2]["parts"][0]["functionResponse"]["name"],
        "vfs_write"
    );
    assert!(second["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"].is_object());
    // A continued conversation sends the stored turn back as it was.
    fake.then(Reply::json(
        200,
        json!({ "candidates": [{ "content": { "role": "model",
        "parts": [{ "text": "ok" }] }, "finishReason": "STOP" }] }),
    ));
    let mut messages = vec![user("write x")];
    messages.extend(chatted.messages);
    messages.push(user("never mind"));
    console
        .request(&ai::Chat {
            messages,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(fake.seen()[2].body["contents"][1], signed);
    // Refused before the model is asked: a tool that is not one, a chat that ends with the model.
    expect_code(
        console
            .request(&ai::Chat {
                messages: vec![user("x")],
                tools: vec!["sys.user.add".into()],
                ..Default::default()
            })
            .await,
        ErrorCode::BadFrame,
    );
    expect_code(
        console.request(&ai::Chat::default()).await,
        ErrorCode::BadFrame,
    );
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn images_are_saved_into_the_users_files_as_the_app() {
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nfake");
    let openai = FakeLlm::start().await;
    openai
        .then(Reply::json(
            200,
            json!({ "created": 1, "data": [{ "b64_json": png }] }),
        ))
        .then(Reply::json(
            200,
            json!({ "created": 1, "data": [{ "url": "https://example.invalid/x.png" }] }),
        ));
    let gemini = FakeLlm::start().await;
    gemini
        .then(Reply::json(
            200,
            json!({ "candidates": [{ "content": { "role": "model", "parts": [
            { "text": "here it is" },
            { "inlineData": { "mimeType": "image/jpeg", "data": png } } ] } }] }),
        ))
        .then(Reply::json(
            200,
            json!({ "candidates": [{ "content": { "role": "model",
            "parts": [{ "text": "I only write words" }] } }] }),
        ));
    let (a, b) = (openai.url("/v1"), gemini.url("/v1beta"));
    let daemon = TestDaemon::start_with(move |c| {
        c.ai.providers.push(provider("o", ProviderKind::Openai, a));
        c.ai.providers.push(provider("g", ProviderKind::Gemini, b));
    })
    .await;
    let client = daemon.owner().await;
    let cli = client.app("cli");
    let saved = cli
        .request(&ai::Image {
            prompt: "a cat".into(),
            path: "/images/cat".into(),
            provider: Some("o".into()),
            model: Some("gpt-image-1".into()),
        })
        .await
        .unwrap();
    assert_eq!(saved.path, "/images/cat.png", "the extension is added");
    assert_eq!(openai.seen()[0].path, "/v1/images/generations");
    assert_eq!(openai.seen()[0].body["model"], "gpt-image-1");
    let read = cli
        .request(&aether_proto::api::vfs::Read {
            path: "/images/cat.png".into(),
            encoding: aether_proto::api::vfs::Encoding::Base64,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(read.data, png);
    let saved = cli
        .request(&ai::Image {
            prompt: "a dog".into(),
            path: "/images/dog".into(),
            provider: Some("g".into()),
            model: Some("gemini-image".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        (saved.path.as_str(), saved.mime.as_str()),
        ("/images/dog.jpg", "image/jpeg")
    );
    assert_eq!(
        gemini.seen()[0].body["generationConfig"]["responseModalities"],
        json!(["TEXT", "IMAGE"])
    );
    // A URL is not fetched; a model that makes no image says so.
    let msg = expect_code(
        cli.request(&ai::Image {
            prompt: "x".into(),
            path: "/x".into(),
            provider: Some("o".into()),
            model: None,
        })
        .await,
        ErrorCode::Unavailable,
    );
    assert!(msg.contains("came as a URL"), "{msg}");
    let msg = expect_code(
        cli.request(&ai::Image {
            prompt: "x".into(),
            path: "/x".into(),
            provider: Some("g".into()),
            model: None,
        })
        .await,
        ErrorCode::Unavailable,
    );
    assert!(msg.contains("no image"), "{msg}");
    expect_code(
        cli.request(&ai::Image {
            prompt: "x".into(),
            path: "relative.png".into(),
            ..Default::default()
        })
        .await,
        ErrorCode::BadFrame,
    );
    // The Agent Console may use the AI but not write files: it cannot save one.
    openai.then(Reply::json(200, json!({ "data": [{ "b64_json": png }] })));
    expect_code(
        client
            .app("agents")
            .request(&ai::Image {
                prompt: "x".into(),
                path: "/y.png".into(),
                provider: Some("o".into()),
                model: None,
            })
            .await,
        ErrorCode::Forbidden,
    );
}

#[tokio::test]
async fn search_by_meaning_embeds_files_once_and_again_only_when_they_change() {
    use aether_proto::api::vfs;
    let fake = FakeLlm::start().await;
    let vectors = |list: Vec<Vec<f32>>| {
        let data: Vec<Value> = list
            .into_iter()
            .enumerate()
            .map(|(i, v)| json!({ "index": i, "embedding": v }))
            .collect();
        Reply::json(
            200,
            json!({ "data": data, "usage": { "prompt_tokens": 3 } }),
        )
    };
    let kittens = vec![1.0, 0.0, 0.0];
    fake.then(vectors(vec![kittens.clone()])).then(vectors(vec![
        vec![0.9, 0.1, 0.0],
        vec![0.1, 0.9, 0.0],
        vec![0.0, 0.1, 0.9],
    ]));
    let daemon = with_openai(&fake, |_| {}).await;
    let cli = daemon.owner().await.app("cli");
    for (path, text) in [
        ("/a-cats.txt", "felines purr softly"),
        ("/b-dogs.txt", "canines bark loudly"),
        ("/c-cars.txt", "engines roar"),
    ] {
        cli.request(&vfs::Write {
            path: path.into(),
            data: text.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let search = vfs::Search {
        query: "kittens".into(),
        semantic: true,
        ..Default::default()
    };
    let found = cli.request(&search).await.unwrap();
    let note = found.semantic.clone().unwrap();
    assert!(note.ranked, "{note:?}");
    assert!(
        note.note.contains("3 files, 3 embedded now"),
        "{}",
        note.note
    );
    assert_eq!(found.hits[0].path, "/a-cats.txt", "{:?}", found.hits);
    assert_eq!(found.hits[0].snippet, "felines purr softly");
    let files = &fake.seen()[1].body["input"];
    assert!(
        files[0].as_str().unwrap().starts_with("/a-cats.txt"),
        "{files}"
    );
    // Unchanged files are not embedded again; a changed one is.
    fake.then(vectors(vec![kittens.clone()]));
    let again = cli.request(&search).await.unwrap();
    assert!(again.semantic.unwrap().note.contains("0 embedded now"));
    assert_eq!(fake.seen().len(), 3);
    cli.request(&vfs::Write {
        path: "/b-dogs.txt".into(),
        data: "small cats, kittens".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    fake.then(vectors(vec![kittens.clone()]))
        .then(vectors(vec![vec![1.0, 0.0, 0.0]]));
    let changed = cli.request(&search).await.unwrap();
    assert!(changed.semantic.unwrap().note.contains("1 embedded now"));
    assert_eq!(fake.seen()[4].body["input"].as_array().unwrap().len(), 1);
    assert_eq!(changed.hits[0].path, "/b-dogs.txt", "in both rankings now");
}

#[tokio::test]
async fn search_by_meaning_without_a_provider_stays_full_text_and_says_so() {
    use aether_proto::api::vfs;
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    cli.request(&vfs::Write {
        path: "/notes.txt".into(),
        data: "kittens everywhere".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let found = aether_tests::wait_for("the index", Duration::from_secs(5), async || {
        let found = cli
            .request(&vfs::Search {
                query: "kittens".into(),
                semantic: true,
                ..Default::default()
            })
            .await
            .unwrap();
        (!found.hits.is_empty()).then_some(found)
    })
    .await;
    let note = found.semantic.unwrap();
    assert!(!note.ranked);
    assert!(
        note.note.starts_with("full text only") && note.note.contains("no AI provider"),
        "{}",
        note.note
    );
}

#[tokio::test]
async fn a_ten_megabyte_prompt_is_refused_and_the_daemon_goes_on() {
    let fake = FakeLlm::start().await;
    let daemon = with_openai(&fake, |_| {}).await;
    let client = daemon.owner().await;
    // Past the frame limit (4 MiB): the connection says `too_large` and closes.
    let refused = client
        .app("cli")
        .request(&whole(&"x".repeat(10 << 20)))
        .await;
    assert!(refused.is_err(), "a 10 MB prompt cannot pass");
    assert!(fake.seen().is_empty(), "the provider was never asked");
    let status = daemon
        .owner()
        .await
        .app("cli")
        .request(&ai::Status::default())
        .await
        .unwrap();
    assert_eq!(status.providers.len(), 1, "the daemon still answers");
}

#[tokio::test]
async fn a_whole_answer_nobody_waits_for_any_more_is_stopped() {
    let fake = FakeLlm::start().await;
    fake.then(Reply::Silence);
    // The provider would keep it a minute; the requester gives up after 300 ms.
    let daemon = with_openai(&fake, |c| {
        c.ai.idle_timeout_ms = 60_000;
        c.ai.max_retries = 0;
    })
    .await;
    let cli = daemon.owner().await.app("cli");
    let started = Instant::now();
    let gave_up = cli
        .request_within(&whole("hi"), Some(Duration::from_millis(300)))
        .await;
    assert!(gave_up.is_err());
    // The request is counted once it ends: well before the provider's minute.
    wait_until("the request to stop", Duration::from_secs(5), async || {
        let status = cli.request(&ai::Status::default()).await.unwrap();
        status.usage.first().is_some_and(|u| u.requests == 1)
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_quota_holds_against_two_hundred_concurrent_calls() {
    let fake = FakeLlm::start().await;
    for _ in 0..200 {
        // Each answer costs 20 tokens; the day allows 2,000: at most 100 fit.
        fake.then(Reply::events([chunk("Hello"), finish(), usage(3, 17)]));
    }
    let daemon = with_openai(&fake, |c| c.ai.daily_token_quota = Some(2_000)).await;
    let client = daemon.owner().await;
    let calls = (0..200).map(|i| {
        let cli = client.app("cli");
        async move {
            cli.request(&ai::Generate {
                max_tokens: Some(20),
                ..whole(&format!("question {i:03}"))
            })
            .await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let refused = results
        .iter()
        .filter(|r| {
            matches!(r, Err(aether_proto::client::ClientError::Daemon(e)) if e.code == ErrorCode::QuotaExceeded)
        })
        .count();
    let answered = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(refused + answered, 200, "{results:?}");
    assert!(
        refused >= 100,
        "200 calls of 20 tokens cannot all fit in 2,000"
    );
    let status = client
        .app("cli")
        .request(&ai::Status::default())
        .await
        .unwrap();
    let spent: u64 = status
        .usage
        .iter()
        .map(|u| u.input_tokens + u.output_tokens)
        .sum();
    assert!(spent <= 2_000, "the quota held: {spent} of 2,000");
    assert_eq!(
        fake.seen().len(),
        answered,
        "refused calls never reached the provider"
    );
    // Each call told the provider the most it may write.
    assert!(
        fake.seen()
            .iter()
            .all(|s| s.body["max_tokens"].as_u64().is_some_and(|m| m <= 20))
    );
}

#[tokio::test]
async fn a_call_near_the_quota_may_write_only_what_is_left() {
    let fake = FakeLlm::start().await;
    fake.then(hello()).then(hello());
    let daemon = with_openai(&fake, |c| c.ai.daily_token_quota = Some(20)).await;
    let cli = daemon.owner().await.app("cli");
    done(&cli, whole("hi")).await;
    done(&cli, whole("hi")).await;
    // 16 spent: the next may write at most what is left after its prompt.
    assert_eq!(fake.seen()[0].body["max_tokens"], 19);
    assert_eq!(fake.seen()[1].body["max_tokens"], 11);
    // Embeddings and chats hold their tokens too.
    let msg = expect_code(
        cli.request(&ai::Embed {
            texts: vec!["x".repeat(400)],
            ..Default::default()
        })
        .await,
        ErrorCode::QuotaExceeded,
    );
    assert!(msg.contains("16 of your 20"), "{msg}");
    expect_code(
        cli.request(&ai::Chat {
            messages: vec![user(&"y".repeat(400))],
            ..Default::default()
        })
        .await,
        ErrorCode::QuotaExceeded,
    );
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn a_provider_echoing_the_key_never_shows_it_to_a_user() {
    let openai = FakeLlm::start().await;
    openai.then(Reply::json(
        401,
        json!({ "error": { "message": format!("Incorrect API key provided: Bearer {KEY}. You can find your API key at https://platform.openai.com/account/api-keys."), "type": "invalid_request_error" } }),
    ));
    let gemini = FakeLlm::start().await;
    gemini.then(Reply::json(
        400,
        json!({ "error": { "code": 400, "status": "INVALID_ARGUMENT",
            "message": format!("API key not valid. Please pass a valid API key. (x-goog-api-key: {KEY}, key={KEY})") } }),
    ));
    let (o, g) = (openai.url("/v1"), gemini.url("/v1beta"));
    let daemon = TestDaemon::start_with(move |c| {
        c.ai.providers.push(provider("o", ProviderKind::Openai, o));
        c.ai.providers.push(provider("g", ProviderKind::Gemini, g));
        c.ai.max_retries = 0;
    })
    .await;
    daemon.add_user("ana", "correct horse battery").await;
    let ana = daemon
        .sign_in("ana", "correct horse battery")
        .await
        .app("cli");
    for name in ["o", "g"] {
        let err = ana
            .request(&ai::Generate {
                provider: Some(name.into()),
                ..whole("hi")
            })
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            !text.contains(KEY) && !text.contains("sk-test") && text.contains("[redacted]"),
            "{name}: {text}"
        );
    }
}

#[tokio::test]
async fn a_stream_says_when_it_waits_and_when_it_tries_again() {
    let fake = FakeLlm::start().await;
    fake.then(Reply::json(
        503,
        json!({ "error": { "message": "overloaded" } }),
    ))
    .then(Reply::Events {
        events: vec![
            (Duration::from_millis(700), chunk("late").to_string()),
            (Duration::ZERO, finish().to_string()),
        ],
        cut: false,
    });
    let daemon = with_openai(&fake, |c| c.ai.notice_every_ms = 200).await;
    let cli = daemon.owner().await.app("cli");
    let mut events = cli.subscribe(ai::STREAMS).await.unwrap();
    let stream = started(&cli, ask("hi")).await.stream;
    let mut notices = Vec::new();
    loop {
        let msg = next_msg(&mut events).await;
        let kind = msg.topic.rsplit('.').next().unwrap().to_owned();
        match kind.as_str() {
            "notice" => notices.push(serde_json::from_str::<ai::Notice>(msg.data.get()).unwrap()),
            "done" => break,
            "error" => panic!("the stream failed: {}", msg.data.get()),
            _ => {}
        }
    }
    assert!(
        matches!(&notices[0], ai::Notice::Retrying { attempt: 1, of: 3, why, .. } if why.contains("overloaded")),
        "{notices:?}"
    );
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, ai::Notice::Waiting { silent_ms } if *silent_ms >= 200)),
        "{notices:?} ({stream})"
    );
}

#[tokio::test]
async fn a_chat_whose_client_left_stops_calling_the_provider() {
    let fake = FakeLlm::start().await;
    let call = json!({ "id": "c1", "type": "function", "function": { "name": "sys_ping", "arguments": "{}" } });
    // The first turn is slow and asks for a tool; a second turn would follow it.
    fake.then(Reply::Later(
        Duration::from_millis(1200),
        Box::new(Reply::json(
            200,
            json!({ "choices": [{ "index": 0, "finish_reason": "tool_calls",
                "message": { "role": "assistant", "content": null, "tool_calls": [call] } }] }),
        )),
    ))
    .then(Reply::json(
        200,
        json!({ "choices": [{ "index": 0, "finish_reason": "stop",
            "message": { "role": "assistant", "content": "pong" } }] }),
    ));
    let daemon = with_openai(&fake, |_| {}).await;
    let cli = daemon.owner().await.app("cli");
    let gave_up = cli
        .request_within(
            &ai::Chat {
                messages: vec![user("ping?")],
                tools: vec!["sys.ping".into()],
                ..Default::default()
            },
            Some(Duration::from_millis(300)),
        )
        .await;
    assert!(gave_up.is_err());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fake.seen().len(), 1, "no turn after the client left");
}

#[tokio::test]
async fn a_failed_stream_is_reported_to_telemetry_as_failed() {
    let fake = FakeLlm::start().await;
    fake.then(Reply::Events {
        events: vec![(Duration::ZERO, chunk("Hel").to_string())],
        cut: true,
    });
    let daemon = with_openai(&fake, |c| c.ai.max_retries = 0).await;
    let cli = daemon.owner().await.app("cli");
    let mut telemetry = cli.subscribe("telemetry.ai.>").await.unwrap();
    let mut events = cli.subscribe(ai::STREAMS).await.unwrap();
    let stream = started(&cli, ask("hi")).await.stream;
    let (_, end) = read_stream(&mut events, &stream).await;
    assert!(end.get("error").is_some(), "{end}");
    let msg = next_msg(&mut telemetry).await;
    let data: Value = serde_json::from_str(msg.data.get()).unwrap();
    assert_eq!(msg.topic, "telemetry.ai.generate");
    assert_eq!(data["ok"], false, "{data}");
    assert_eq!(data["stream"], true, "{data}");
}

#[tokio::test]
async fn one_file_the_provider_refuses_is_skipped_and_the_rest_are_kept() {
    use aether_proto::api::vfs;
    let fake = FakeLlm::start().await;
    let vectors = |list: Vec<Vec<f32>>| {
        let data: Vec<Value> = list
            .into_iter()
            .enumerate()
            .map(|(i, v)| json!({ "index": i, "embedding": v }))
            .collect();
        Reply::json(
            200,
            json!({ "data": data, "usage": { "prompt_tokens": 3 } }),
        )
    };
    let refused = || Reply::json(400, json!({ "error": { "message": "input is not text" } }));
    // The query; the batch of three (refused); /a alone; /b and /c (refused); /b; /c (refused).
    fake.then(vectors(vec![vec![1.0, 0.0]]))
        .then(refused())
        .then(vectors(vec![vec![1.0, 0.0]]))
        .then(refused())
        .then(vectors(vec![vec![0.0, 1.0]]))
        .then(refused());
    let daemon = with_openai(&fake, |c| c.ai.max_retries = 0).await;
    let cli = daemon.owner().await.app("cli");
    for (path, text) in [("/a.txt", "cats"), ("/b.txt", "dogs"), ("/c.txt", "odd")] {
        cli.request(&vfs::Write {
            path: path.into(),
            data: text.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let search = vfs::Search {
        query: "kittens".into(),
        semantic: true,
        ..Default::default()
    };
    let found = cli.request(&search).await.unwrap();
    let note = found.semantic.unwrap();
    assert!(note.ranked, "meaning still ranks: {}", note.note);
    assert!(
        note.note.contains("2 embedded now")
            && note.note.contains("/c.txt (")
            && note.note.contains("input is not text"),
        "{}",
        note.note
    );
    assert_eq!(found.hits[0].path, "/a.txt");
    // The next search sends the query only: what worked is kept, what failed is not retried.
    fake.then(vectors(vec![vec![1.0, 0.0]]));
    let again = cli.request(&search).await.unwrap();
    assert!(again.semantic.unwrap().note.contains("0 embedded now"));
    assert_eq!(fake.seen().len(), 7);
}

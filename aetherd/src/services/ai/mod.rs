//! `ai.*`: language models behind one interface. A request names a configured provider
//! (or gets the default), is retried on rate limits and server errors (honouring
//! `Retry-After`), streams its text as `ai.stream.<id>.*` events in the caller's
//! namespace, and is counted against the user's daily token quota. A stream stops when
//! it is cancelled, when nobody listens any more (the client went away), at its
//! timeouts, and when the daemon stops. Keys stay in the daemon: no answer carries one.

mod chat;
mod gemini;
mod image;
mod openai;
pub mod provider;
mod usage;
mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_proto::api::Call as _;
use aether_proto::api::ai::{self, Generated, TokenUsage};
use aether_proto::api::telemetry::TelemetryEvents;
use aether_proto::{ErrorBody, ErrorCode};
use backon::BackoffBuilder;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::provider::Provider;
use self::wire::{Piece, Prompt, ProviderError};
use super::{Handler, Incoming, OnBehalf, Publisher, Reply, Requester, Seat};
use crate::config::AiConfig;
use crate::store::Store;

/// The longest answer kept; a longer one is stopped with an error.
const MAX_ANSWER_BYTES: usize = 4 << 20;
/// How long `ai.status` waits for each provider when probing.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

const NO_PROVIDER: &str = "no AI provider is configured. Set GEMINI_API_KEY (Gemini) or \
     OPENAI_API_KEY / OPENAI_BASE_URL (any OpenAI-compatible server, e.g. Ollama at \
     http://127.0.0.1:11434/v1) before starting aetherd, or add [[ai.providers]] to its \
     config.toml (see the README)";

pub struct AiService {
    providers: Vec<Provider>,
    /// Index into `providers` of the one used when a request names none.
    default: Option<usize>,
    config: AiConfig,
    store: Store,
    /// The daily token quota, with what calls in flight hold of it.
    quota: Arc<usage::Quota>,
    publisher: Publisher,
    /// For the tools a chat's model calls, made as the calling app.
    requester: Requester,
    streams: parking_lot::Mutex<HashMap<String, Running>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Removes a stream from the running ones when dropped.
struct StreamSlot {
    service: Arc<AiService>,
    id: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.service.streams.lock().remove(&self.id);
    }
}

/// A stream in flight.
struct Running {
    user_id: i64,
    cancel: CancellationToken,
}

pub fn start(seat: Seat, config: AiConfig, store: Store) -> anyhow::Result<()> {
    // reqwest is built on rustls without a default provider: ring, as everywhere here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let providers = config
        .providers
        .iter()
        .map(|p| Provider::new(p, &config))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let default = match &config.default {
        Some(name) => providers.iter().position(|p| &p.name == name),
        None => (!providers.is_empty()).then_some(0),
    };
    for p in &providers {
        tracing::info!(
            "AI provider {:?}: {:?} at {}, model {}",
            p.name,
            p.endpoint.kind,
            p.endpoint.base_url,
            p.model
        );
    }
    let service = AiService {
        providers,
        default,
        quota: usage::Quota::new(config.daily_token_quota, store.clone()),
        config,
        store,
        publisher: seat.publisher(),
        requester: seat.requester(),
        streams: parking_lot::Mutex::default(),
        shutdown: seat.shutdown(),
        tasks: seat.tasks(),
    };
    seat.run(Arc::new(service));
    Ok(())
}

impl Handler for AiService {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> Reply {
        let user_id = request.caller.user_id;
        match request.topic.as_str() {
            ai::Status::TOPIC => request.call(|ask| self.status(user_id, ask)).await,
            ai::Generate::TOPIC => {
                request
                    .call(|ask| self.generate(request.on_behalf(), ask, request.gone()))
                    .await
            }
            ai::Cancel::TOPIC => {
                request
                    .call(|ask: ai::Cancel| async move { self.cancel(user_id, &ask.stream) })
                    .await
            }
            ai::Embed::TOPIC => {
                request
                    .call(|ask| self.embed(request.on_behalf(), ask))
                    .await
            }
            ai::Image::TOPIC => {
                request
                    .call(|ask| self.image(request.on_behalf(), ask))
                    .await
            }
            ai::Chat::TOPIC => {
                request
                    .call(|ask| self.chat(request.on_behalf(), ask, request.gone()))
                    .await
            }
            _ => Err(request.unknown()),
        }
    }

    /// `telemetry.ai.<op>` with the outcome and time (never the prompt). A stream that
    /// started says how it ended when it ends, not now.
    fn telemetry(&self, request: &Incoming, ok: bool, took: Duration) -> Option<(String, Value)> {
        let op = TelemetryEvents::request_op(request.topic.as_str());
        if ok && request.topic.as_str() == ai::Generate::TOPIC && streams(request) {
            return None;
        }
        Some(telemetry(op, ok, took, false))
    }
}

impl AiService {
    async fn status(&self, user_id: i64, ask: ai::Status) -> Result<ai::StatusAnswer, ErrorBody> {
        let mut providers: Vec<ai::ProviderInfo> =
            self.providers.iter().map(Provider::info).collect();
        if ask.probe {
            let probes = self.providers.iter().map(|p| async move {
                let started = Instant::now();
                let result = tokio::time::timeout(PROBE_TIMEOUT, p.probe())
                    .await
                    .unwrap_or(Err(ProviderError::Timeout(PROBE_TIMEOUT)));
                (result, started.elapsed())
            });
            let results = futures_util::future::join_all(probes).await;
            for ((info, (result, took)), p) in
                providers.iter_mut().zip(results).zip(&self.providers)
            {
                info.reachable = Some(result.is_ok());
                info.latency_ms = Some(took.as_millis() as u64);
                info.error = result.err().map(|e| p.error_body(&e).msg);
            }
        }
        let usage = usage::today_by_app(&self.store, user_id)
            .await
            .map_err(internal)?;
        Ok(ai::StatusAnswer {
            default: self.default.map(|i| self.providers[i].name.clone()),
            hint: self.providers.is_empty().then(|| NO_PROVIDER.to_owned()),
            providers,
            usage,
            daily_token_quota: self.quota.daily(),
        })
    }

    /// The provider a request names, else the default; `unavailable` when there is none.
    fn pick(&self, name: Option<&str>) -> Result<&Provider, ErrorBody> {
        if self.providers.is_empty() {
            return Err(ErrorBody::new(ErrorCode::Unavailable, NO_PROVIDER));
        }
        match name {
            Some(name) => self
                .providers
                .iter()
                .find(|p| p.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = self.providers.iter().map(|p| p.name.as_str()).collect();
                    ErrorBody::new(
                        ErrorCode::NotFound,
                        format!(
                            "no AI provider is called {name:?}; configured: {}",
                            known.join(", ")
                        ),
                    )
                }),
            None => self
                .default
                .map(|i| &self.providers[i])
                .ok_or_else(|| ErrorBody::new(ErrorCode::Unavailable, NO_PROVIDER)),
        }
    }

    async fn generate(
        self: &Arc<Self>,
        on: OnBehalf,
        ask: ai::Generate,
        gone: impl Future<Output = ()> + Send + 'static,
    ) -> Result<ai::GenerateAnswer, ErrorBody> {
        let size = check_generate(&ask)?;
        let provider = self.pick(ask.provider.as_deref())?;
        if let Some(model) = &ask.model {
            provider::check_model(model)?;
        }
        let reservation = self
            .quota
            .reserve(
                on.caller.user_id,
                &on.app,
                estimate(size, 0).input,
                ask.max_tokens,
            )
            .await?;
        let prompt = Prompt {
            system: ask.system,
            prompt: ask.prompt,
            model: ask.model.unwrap_or_else(|| provider.model.clone()),
            max_tokens: reservation.max_output,
            temperature: ask.temperature,
            schema: ask.schema,
        };
        let provider_index = self
            .providers
            .iter()
            .position(|p| p.name == provider.name)
            .unwrap_or_default();
        if !ask.stream {
            // Nobody waits for the answer any more: stop asking the provider for it.
            let (cancel, _done) = self.until_gone(gone);
            let mut streamed = 0;
            let result = self
                .complete(
                    provider_index,
                    &prompt,
                    &cancel,
                    |text| {
                        streamed += text.len();
                        true
                    },
                    &mut |_| {},
                )
                .await;
            reservation.settle(spent(&result, &prompt, streamed)).await;
            return result.map(ai::GenerateAnswer::Done);
        }
        let id = format!("s{:012x}", rand::random::<u64>() >> 16);
        let cancel = self.shutdown.child_token();
        self.take_stream_slot(on.caller.user_id, &id, &cancel)?;
        let started = ai::StreamStarted {
            stream: id.clone(),
            topic: ai::StreamEvents::of(&id),
            provider: provider.name.clone(),
            model: prompt.model.clone(),
        };
        self.spawn_stream(id, on, prompt, provider_index, cancel, reservation);
        Ok(ai::GenerateAnswer::Streaming(started))
    }

    /// Stream `prompt`'s answer as `ai.stream.<id>.*` events from a task of its own: the
    /// pieces as they come (until nobody has heard them for a while), then done or error,
    /// then the quota settled and the telemetry event.
    fn spawn_stream(
        self: &Arc<Self>,
        id: String,
        on: OnBehalf,
        prompt: Prompt,
        provider_index: usize,
        cancel: CancellationToken,
        reservation: usage::Reservation,
    ) {
        let service = self.clone();
        self.tasks.spawn(async move {
            // The user's stream slot is given back however the task ends (a panic too).
            let _slot = StreamSlot {
                service: service.clone(),
                id: id.clone(),
            };
            let began = Instant::now();
            let topic = |kind| ai::StreamEvents::topic_of(&id, kind);
            let mut seq = 0;
            let mut heard = Instant::now();
            let publisher = service.publisher.clone();
            let delta_topic = topic(ai::StreamEventKind::Delta);
            let notice_topic = topic(ai::StreamEventKind::Notice);
            let grace = Duration::from_millis(service.config.abandon_after_ms);
            let mut streamed = 0;
            let result = service
                .complete(
                    provider_index,
                    &prompt,
                    &cancel,
                    |text| {
                        streamed += text.len();
                        let delta = ai::Delta {
                            seq,
                            text: text.to_owned(),
                        };
                        seq += 1;
                        let now = Instant::now();
                        if publisher.publish_counted(&on, &delta_topic, &delta) > 0 {
                            heard = now;
                        }
                        // Nobody has heard it for a while: the client is gone.
                        now.duration_since(heard) < grace
                    },
                    &mut |notice| publisher.publish(&on, &notice_topic, &notice),
                )
                .await;
            reservation.settle(spent(&result, &prompt, streamed)).await;
            match &result {
                Ok(done) => publisher.publish(&on, &topic(ai::StreamEventKind::Done), done),
                Err(error) => publisher.publish(&on, &topic(ai::StreamEventKind::Error), error),
            }
            // How the stream ended is what monitoring and rules see.
            let (event, data) = telemetry("generate", result.is_ok(), began.elapsed(), true);
            publisher.publish(&on, &event, &data);
        });
    }

    /// A token cancelled when the client stops waiting (`gone`) or the daemon stops; the
    /// guard ends the watch when the work is over.
    fn until_gone(
        &self,
        gone: impl Future<Output = ()> + Send + 'static,
    ) -> (CancellationToken, tokio_util::sync::DropGuard) {
        let cancel = self.shutdown.child_token();
        let stop = cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = gone => stop.cancel(),
                _ = stop.cancelled() => {}
            }
        });
        let done = cancel.clone().drop_guard();
        (cancel, done)
    }

    /// One of the user's stream slots for stream `id`, or `rate_limited` when all are taken.
    fn take_stream_slot(
        &self,
        user_id: i64,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<(), ErrorBody> {
        let mut streams = self.streams.lock();
        let mine = streams.values().filter(|s| s.user_id == user_id).count();
        if mine >= self.config.streams_per_user {
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                format!(
                    "you have {mine} AI streams running, the most at once; wait for one \
                     to end or cancel one (ai.cancel)"
                ),
            ));
        }
        streams.insert(
            id.to_owned(),
            Running {
                user_id,
                cancel: cancel.clone(),
            },
        );
        Ok(())
    }

    /// Ask and read the whole answer, handing each piece of text to `on_text` as it
    /// comes (which returns false to stop: nobody listens).
    async fn complete(
        &self,
        provider_index: usize,
        prompt: &Prompt,
        cancel: &CancellationToken,
        mut on_text: impl FnMut(&str) -> bool,
        notify: &mut (dyn FnMut(ai::Notice) + Send),
    ) -> Result<Generated, ErrorBody> {
        let provider = &self.providers[provider_index];
        let total = Duration::from_millis(self.config.total_timeout_ms);
        let deadline = tokio::time::Instant::now() + total;
        let mut pieces = self
            .with_retries(provider, cancel, &mut *notify, || provider.stream(prompt))
            .await?;
        let mut text = String::new();
        let mut usage = TokenUsage::default();
        let mut finish = None;
        let fail = |e: ProviderError| provider.error_body(&e);
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return Err(cancelled(&self.shutdown)),
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(fail(ProviderError::Timeout(total)));
                }
                next = saying_silence(self.notice_every(), provider.endpoint.idle_timeout, pieces.next(), &mut *notify) => next,
            };
            match next {
                None => return Err(fail(ProviderError::Timeout(provider.endpoint.idle_timeout))),
                Some(None) => break,
                Some(Some(Err(e))) => return Err(fail(e)),
                Some(Some(Ok(Piece::Text(piece)))) => {
                    if text.len() + piece.len() > MAX_ANSWER_BYTES {
                        return Err(ErrorBody::new(
                            ErrorCode::TooLarge,
                            "the answer grew past 4 MiB and was stopped",
                        ));
                    }
                    text.push_str(&piece);
                    if !on_text(&piece) {
                        return Err(ErrorBody::new(
                            ErrorCode::Cancelled,
                            "stopped: nobody listens to the stream any more",
                        ));
                    }
                }
                Some(Some(Ok(Piece::Usage(u)))) => usage = u,
                Some(Some(Ok(Piece::Finish(reason)))) => finish = Some(reason),
            }
        }
        let json = match &prompt.schema {
            Some(_) => Some(serde_json::from_str::<Value>(text.trim()).map_err(|e| {
                ErrorBody::new(
                    ErrorCode::Unavailable,
                    format!(
                        "AI provider {:?}: the answer was to be JSON, but it is not ({e})",
                        provider.name
                    ),
                )
            })?),
            None => None,
        };
        Ok(Generated {
            text,
            json,
            provider: provider.name.clone(),
            model: prompt.model.clone(),
            usage,
            finish,
        })
    }

    /// Try `attempt`, and again after rate limits, server errors and lost connections:
    /// exponential backoff with jitter, or the wait the provider names (`Retry-After`)
    /// when it names one no longer than `max_retry_wait_ms`.
    async fn with_retries<T, F, Fut>(
        &self,
        provider: &Provider,
        cancel: &CancellationToken,
        notify: &mut (dyn FnMut(ai::Notice) + Send),
        attempt: F,
    ) -> Result<T, ErrorBody>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut backoff = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_jitter()
            .with_max_times(self.config.max_retries)
            .build();
        let max_wait = Duration::from_millis(self.config.max_retry_wait_ms);
        let tries = self.config.max_retries as u32 + 1;
        let mut tried = 0;
        loop {
            tried += 1;
            let result = tokio::select! {
                _ = cancel.cancelled() => return Err(cancelled(&self.shutdown)),
                // The attempt's own timeouts end it; meanwhile the silence is told.
                result = saying_silence(self.notice_every(), Duration::MAX, attempt(), &mut *notify) => {
                    result.unwrap_or(Err(ProviderError::Timeout(provider.endpoint.idle_timeout)))
                }
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(e) if e.retryable() => e,
                Err(e) => return Err(provider.error_body(&e)),
            };
            let Some(delay) = backoff.next() else {
                return Err(provider.error_body(&error));
            };
            let wait = match &error {
                ProviderError::RateLimited {
                    retry_after: Some(wait),
                    ..
                } if *wait > max_wait => return Err(provider.error_body(&error)),
                ProviderError::RateLimited {
                    retry_after: Some(wait),
                    ..
                } => *wait,
                _ => delay,
            };
            notify(ai::Notice::Retrying {
                attempt: tried,
                of: tries,
                wait_ms: wait.as_millis() as u64,
                why: provider.error_body(&error).msg,
            });
            tracing::debug!(
                "AI provider {:?}: {}; again in {wait:?}",
                provider.name,
                provider.error_body(&error).msg
            );
            tokio::select! {
                _ = cancel.cancelled() => return Err(cancelled(&self.shutdown)),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn notice_every(&self) -> Duration {
        Duration::from_millis(self.config.notice_every_ms)
    }

    fn cancel(&self, user_id: i64, stream: &str) -> Result<ai::CancelAnswer, ErrorBody> {
        let streams = self.streams.lock();
        match streams.get(stream) {
            Some(running) if running.user_id == user_id => {
                running.cancel.cancel();
                Ok(ai::CancelAnswer { cancelled: true })
            }
            // Another user's stream is not there, as far as this user can tell.
            _ => Ok(ai::CancelAnswer { cancelled: false }),
        }
    }

    async fn embed(&self, on: OnBehalf, ask: ai::Embed) -> Result<ai::Embedded, ErrorBody> {
        if ask.texts.is_empty() {
            return Err(bad("`texts` is empty"));
        }
        if ask.texts.len() > ai::MAX_EMBED_TEXTS {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!(
                    "{} texts; at most {} per request",
                    ask.texts.len(),
                    ai::MAX_EMBED_TEXTS
                ),
            ));
        }
        let size: usize = ask.texts.iter().map(String::len).sum();
        if size > ai::MAX_PROMPT_BYTES {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!("the texts are {size} bytes; at most 1 MiB per request"),
            ));
        }
        let provider = self.pick(ask.provider.as_deref())?;
        if let Some(model) = &ask.model {
            provider::check_model(model)?;
        }
        let model = ask
            .model
            .or_else(|| provider.embed_model.clone())
            .ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::Unavailable,
                    format!(
                        "AI provider {:?} has no embed_model configured, so it makes no embeddings",
                        provider.name
                    ),
                )
            })?;
        let reservation = self
            .quota
            .reserve(on.caller.user_id, &on.app, estimate(size, 0).input, Some(0))
            .await?;
        let cancel = self.shutdown.child_token();
        let result = self
            .with_retries(provider, &cancel, &mut |_| {}, || {
                provider.embed(&ask.texts, &model)
            })
            .await;
        let (vectors, spent) = match result {
            Ok(done) => done,
            Err(e) => {
                reservation.settle(TokenUsage::default()).await;
                return Err(e);
            }
        };
        // Gemini does not count an embedding's tokens: estimate them.
        let spent = if spent == TokenUsage::default() {
            estimate(size, 0)
        } else {
            spent
        };
        reservation.settle(spent).await;
        Ok(ai::Embedded {
            vectors,
            provider: provider.name.clone(),
            model,
            usage: spent,
        })
    }
}

/// What a request spent, even one that failed part way: the provider's count when it
/// gave one, else an estimate (about four bytes a token) of the prompt and of what was
/// written before the end, so cancelling late does not spend nothing.
fn spent(result: &Result<Generated, ErrorBody>, prompt: &Prompt, streamed: usize) -> TokenUsage {
    match result {
        Ok(done) if done.usage != TokenUsage::default() => done.usage,
        _ if streamed == 0 && result.is_err() => TokenUsage::default(),
        _ => estimate(
            prompt.prompt.len() + prompt.system.as_ref().map_or(0, String::len),
            streamed,
        ),
    }
}

/// Wait for `work` up to `limit` (None after it), telling `notify` every `every` of
/// silence.
async fn saying_silence<T>(
    every: Duration,
    limit: Duration,
    work: impl Future<Output = T>,
    notify: &mut (dyn FnMut(ai::Notice) + Send),
) -> Option<T> {
    let began = tokio::time::Instant::now();
    let deadline = began.checked_add(limit);
    let every = every.max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(began + every, every);
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = ticks.tick() => notify(ai::Notice::Waiting {
                silent_ms: began.elapsed().as_millis() as u64,
            }),
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => return None,
        }
    }
}

/// `telemetry.ai.<op>`: outcome, time, and whether it was a stream's end.
fn telemetry(op: &str, ok: bool, took: Duration, stream: bool) -> (String, Value) {
    let mut data = json!({ "op": op, "ok": ok, "micros": took.as_micros() as u64 });
    if stream {
        data["stream"] = Value::Bool(true);
    }
    (TelemetryEvents::topic_of("ai", op), data)
}

/// Does this `ai.generate` request ask for a stream (the default)?
fn streams(request: &Incoming) -> bool {
    serde_json::from_str::<Value>(request.data.get())
        .ok()
        .and_then(|v| v.get("stream").and_then(Value::as_bool))
        .unwrap_or(true)
}

/// Tokens for this many bytes in and out, when the provider did not say: about four
/// bytes a token, at least one each way in.
fn estimate(input_bytes: usize, output_bytes: usize) -> TokenUsage {
    TokenUsage {
        input: (input_bytes as u64).div_ceil(4).max(1),
        output: (output_bytes as u64).div_ceil(4),
    }
}

fn bad(msg: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

fn internal(e: anyhow::Error) -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, format!("{e:#}"))
}

fn cancelled(shutdown: &CancellationToken) -> ErrorBody {
    if shutdown.is_cancelled() {
        ErrorBody::new(ErrorCode::Unavailable, "the daemon is stopping")
    } else {
        ErrorBody::new(ErrorCode::Cancelled, "cancelled")
    }
}

/// What `ai.generate` may ask: a prompt that is not empty and at most 1 MiB (with the
/// system text), a schema that is an object, a temperature from 0 to 2. The prompt's size.
fn check_generate(ask: &ai::Generate) -> Result<usize, ErrorBody> {
    let size = ask.prompt.len() + ask.system.as_ref().map_or(0, String::len);
    if size > ai::MAX_PROMPT_BYTES {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "the prompt is {size} bytes; at most {} (1 MiB) per request",
                ai::MAX_PROMPT_BYTES
            ),
        ));
    }
    if ask.prompt.trim().is_empty() {
        return Err(bad("`prompt` is empty"));
    }
    if let Some(schema) = &ask.schema
        && !schema.is_object()
    {
        return Err(bad("`schema` must be a JSON Schema object"));
    }
    if let Some(t) = ask.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(bad("`temperature` must be between 0 and 2"));
    }
    Ok(size)
}

//! `vm.*`: run WASI preview1 programs from the user's files (or an installed
//! app's entry) in a sandbox and stream their output live as
//! `vm.job.<id>.stdout|stderr|exit` events.
//!
//! A module from the user's files is read through the bus (`vfs.read`, as the
//! calling app), so the same permission check applies. Limits come from the app's manifest, capped by
//! the daemon's config. Jobs beyond the per-user and overall concurrency wait in
//! a bounded queue; beyond it they are refused.

mod bundle;
mod guard;
mod host;
mod output;
mod runtime;
mod trampoline;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use tokio::sync::Semaphore;
use wasmtime_wasi::FsPerms;

use aether_proto::api::telemetry::TelemetryEvents;
use aether_proto::api::vm::{self, FileAccess, JobState as State};
use aether_proto::api::{Call as _, Event as _, vfs};
use aether_proto::{Capability, ErrorBody, ErrorCode};

use super::{Handler, Incoming, OnBehalf, Publisher, Reply, Requester, Seat};
use crate::config::{ComputeLimits, UserRoots};
use crate::identity::Caller;
use crate::perms::PermsView;
use guard::Budget;
use host::GuestBus;
use output::{ChannelOutput, OutputLimit, Stream};
use runtime::{Ending, Outcome, RunSpec, Runtime};

/// Finished jobs remembered per user.
const KEEP_FINISHED: usize = 100;
const MAX_MODULE_BYTES: u64 = 64 << 20;

struct Job {
    id: String,
    user_id: i64,
    path: String,
    state: parking_lot::Mutex<State>,
    kill: Arc<AtomicBool>,
    stdin: parking_lot::Mutex<Option<std::io::PipeWriter>>,
    /// Output so far (bounded by the job's output limit), for late subscribers.
    log: parking_lot::Mutex<Vec<vm::OutputChunk>>,
}

impl Job {
    fn summary(&self) -> vm::JobSummary {
        vm::JobSummary {
            job: self.id.clone(),
            path: self.path.clone(),
            topic: vm::job_topic(&self.id),
            status: self.state.lock().clone(),
        }
    }

    fn finished(&self) -> bool {
        matches!(*self.state.lock(), State::Finished { .. })
    }
}

/// One user's jobs: running slots, how many wait, and the write budget they share.
struct UserJobs {
    slots: Arc<Semaphore>,
    waiting: usize,
    /// Held by the user's running jobs that may write; read afresh once none runs.
    budget: Arc<tokio::sync::Mutex<Weak<Budget>>>,
}

/// Where compute keeps and finds things.
pub struct Places {
    /// Users' file roots, preopened for jobs as their apps allow.
    pub roots: UserRoots,
    /// Compiled modules, cached by content hash.
    pub modules: PathBuf,
    /// Installed apps' manifests and bundles.
    pub manifests: PathBuf,
}

struct Compute {
    places: Places,
    limits: ComputeLimits,
    perms: PermsView,
    runtime: Arc<Runtime>,
    jobs: parking_lot::Mutex<HashMap<String, Arc<Job>>>,
    overall: Arc<Semaphore>,
    compiles: Arc<Semaphore>,
    users: parking_lot::Mutex<HashMap<i64, UserJobs>>,
    requester: Requester,
    publisher: Publisher,
}

pub fn start(seat: Seat, places: Places, limits: ComputeLimits) -> anyhow::Result<()> {
    let compute = Arc::new(Compute {
        runtime: Runtime::new(places.modules.clone())?,
        overall: Arc::new(Semaphore::new(limits.jobs_total)),
        compiles: Arc::new(Semaphore::new(COMPILES_AT_ONCE)),
        perms: seat.perms(),
        requester: seat.requester(),
        publisher: seat.publisher(),
        jobs: parking_lot::Mutex::default(),
        users: parking_lot::Mutex::default(),
        places,
        limits,
    });
    seat.run(compute);
    Ok(())
}

impl Handler for Compute {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> Reply {
        match request.topic.as_str() {
            vm::Run::TOPIC => request.call(|req| self.run(request, req)).await,
            vm::Kill::TOPIC => request.call(|req| async { self.kill(request, req) }).await,
            vm::Stdin::TOPIC => request.call(|req| self.stdin(request, req)).await,
            vm::Jobs::TOPIC => request.call(|req| async { self.list(request, req) }).await,
            vm::Prepare::TOPIC => request.call(|req| self.prepare(req)).await,
            _ => Err(request.unknown()),
        }
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn bad(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

fn internal(e: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, e.to_string())
}

/// What a `vm.run` resolved to: the program's name, its app, and its limits.
struct Plan {
    name: String,
    /// The app whose file capabilities the program's access to files follows.
    files_of: String,
    /// Where an installed app's entry is read from.
    bundle: std::path::PathBuf,
    manifest: aether_proto::Manifest,
    files: FileAccess,
    limits: vm::JobLimits,
}

/// A job before it runs: its module, still to be compiled (or taken from the cache), and
/// what it runs with.
struct Pending {
    wasm: Vec<u8>,
    /// The installed app whose program it is: checked again just before it starts.
    installed: Option<String>,
    files: FileAccess,
    /// The app whose file capabilities (and their paths) the program's files follow.
    files_of: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<std::fs::File>,
    preopen: Option<(PathBuf, FsPerms)>,
    memory_bytes: usize,
    timeout: Duration,
    output: ChannelOutput,
    bus: Option<GuestBus>,
}

/// Modules compiled at once, daemon-wide: compiling is the costliest thing a job asks.
const COMPILES_AT_ONCE: usize = 1;
/// The longest an install's `vm.prepare` may compile.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(120);

/// A job's place in its user's queue.
struct Queued {
    user_id: i64,
    slots: Arc<Semaphore>,
    /// The write budget the user's running jobs share.
    budget: Arc<tokio::sync::Mutex<Weak<Budget>>>,
}

fn preopen_perms(files: FileAccess) -> Option<FsPerms> {
    match files {
        FileAccess::None => None,
        FileAccess::ReadOnly => Some(FsPerms::ReadOnly),
        FileAccess::ReadWrite => Some(FsPerms::ReadWrite),
    }
}

fn killed_before_start() -> Outcome {
    Outcome {
        ending: Ending::Killed,
        error: Some("killed before it started".into()),
        ..Outcome::default()
    }
}

fn files_allowed(manifest: &aether_proto::Manifest) -> FileAccess {
    if manifest.has(Capability::VfsWrite) {
        FileAccess::ReadWrite
    } else if manifest.has(Capability::VfsRead) {
        FileAccess::ReadOnly
    } else {
        FileAccess::None
    }
}

fn check_args(req: &vm::Run) -> Result<(), ErrorBody> {
    if req.args.len() > 256 || req.args.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
        return Err(bad(
            "args: at most 256, each at most 4096 bytes without NUL",
        ));
    }
    if req.env.len() > 128 {
        return Err(bad("env: at most 128 variables"));
    }
    for (key, value) in &req.env {
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && key.len() <= 128;
        if !valid || value.len() > 4096 || value.contains('\0') {
            return Err(bad(format!(
                "env: {key:?} is not a valid variable (or its value is too long)"
            )));
        }
    }
    Ok(())
}

impl Compute {
    fn job(&self, request: &Incoming, id: &str) -> Result<Arc<Job>, ErrorBody> {
        self.jobs
            .lock()
            .get(id)
            .filter(|job| job.user_id == request.caller.user_id)
            .cloned()
            .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, format!("you have no job {id}")))
    }

    /// Read the module through the bus, as the calling app: the VFS checks what it may read.
    async fn read_module(&self, request: &Incoming, path: &str) -> Result<Vec<u8>, ErrorBody> {
        let on = request.on_behalf();
        let topic = aether_proto::Topic::parse(vfs::Read::TOPIC)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
        self.requester.check_as(&on, &topic).map_err(|d| {
            ErrorBody::new(
                d.code,
                format!("to run a program from your files: {}", d.msg),
            )
        })?;
        let mut module = Vec::new();
        loop {
            let ask = vfs::Read {
                path: path.to_owned(),
                offset: module.len() as u64,
                encoding: vfs::Encoding::Base64,
                ..vfs::Read::default()
            };
            let answer = self
                .requester
                .request_as(&on, &ask, Duration::from_secs(30))
                .await?;
            if answer.size > MAX_MODULE_BYTES {
                return Err(ErrorBody::new(
                    ErrorCode::TooLarge,
                    format!(
                        "{path} is larger than the {} MiB a module may be",
                        MAX_MODULE_BYTES >> 20
                    ),
                ));
            }
            let chunk = BASE64
                .decode(&answer.data)
                .map_err(|e| bad(e.to_string()))?;
            module.extend_from_slice(&chunk);
            if answer.eof || chunk.is_empty() {
                return Ok(module);
            }
        }
    }

    async fn run(
        self: &Arc<Self>,
        request: &Incoming,
        req: vm::Run,
    ) -> Result<vm::RunAnswer, ErrorBody> {
        check_args(&req)?;
        let plan = self.plan(request, &req)?;
        let wasm = match &req.path {
            Some(path) => self.read_module(request, path).await?,
            None => {
                let (dir, target) = (plan.bundle.clone(), plan.manifest.clone());
                tokio::task::spawn_blocking(move || {
                    bundle::read_entry(&dir, &target, MAX_MODULE_BYTES)
                })
                .await
                .map_err(internal)??
            }
        };
        // What can be known without compiling is checked now, so a module that cannot run
        // is refused at once; it is compiled once the job has its slots, within its time.
        let runtime = self.runtime.clone();
        let (wasm, cached) = tokio::task::spawn_blocking(move || {
            let cached = runtime.is_compiled(&wasm);
            if !cached {
                runtime.check(&wasm)?;
            }
            Ok::<_, ErrorBody>((wasm, cached))
        })
        .await
        .map_err(internal)??;

        let user_id = request.caller.user_id;
        let (stdin_reader, mut stdin_writer) = std::io::pipe().map_err(internal)?;
        if let Some(data) = &req.stdin {
            // Small initial input fits the pipe; larger input goes in with vm.stdin.
            if data.len() > 60 * 1024 {
                return Err(bad(
                    "stdin: at most 60 KiB here; send more with vm.stdin and keep_stdin_open",
                ));
            }
            stdin_writer.write_all(data.as_bytes()).map_err(internal)?;
        }
        let id = format!("j{:012x}", rand::random::<u64>() >> 16);
        let job = Arc::new(Job {
            id: id.clone(),
            user_id,
            // Installed apps show as `app:<id>` in job lists.
            path: match &req.installed {
                Some(id) => format!("app:{id}"),
                None => plan.name.clone(),
            },
            state: parking_lot::Mutex::new(State::Queued),
            kill: Arc::new(AtomicBool::new(false)),
            stdin: parking_lot::Mutex::new(req.keep_stdin_open.then_some(stdin_writer)),
            log: parking_lot::Mutex::default(),
        });
        let preopen = match preopen_perms(plan.files) {
            Some(perms) => {
                let root = self.places.roots.of(user_id);
                std::fs::create_dir_all(&root).map_err(internal)?;
                Some((root, perms))
            }
            None => None,
        };
        let queued = self.enqueue(user_id)?;
        self.remember(job.clone());
        let spec = Pending {
            wasm,
            installed: req.installed.clone(),
            files: plan.files,
            files_of: plan.files_of.clone(),
            args: std::iter::once(plan.name).chain(req.args).collect(),
            env: req.env.into_iter().collect(),
            stdin: Some(std::fs::File::from(std::os::fd::OwnedFd::from(
                stdin_reader,
            ))),
            preopen,
            memory_bytes: (plan.limits.memory_mb as usize) << 20,
            timeout: Duration::from_millis(plan.limits.timeout_ms),
            output: self.sink(request, &job, u64::from(plan.limits.output_kb) << 10),
            // An installed app's program acts on the bus as that app, for this user.
            bus: req.installed.as_ref().map(|app| {
                // As the app, for the user, never with the user's admin rights.
                let caller = Arc::new(Caller {
                    admin: false,
                    ..(*request.caller).clone()
                });
                let on = OnBehalf {
                    caller,
                    app: app.clone(),
                    origin: request.origin,
                };
                GuestBus::new(self.requester.clone(), on, job.kill.clone())
            }),
        };
        self.start(job, spec, queued, request.on_behalf());
        Ok(vm::RunAnswer {
            topic: vm::job_topic(&id),
            job: id,
            cached,
            limits: plan.limits,
        })
    }

    /// What to run, with which limits and access to files.
    fn plan(&self, request: &Incoming, req: &vm::Run) -> Result<Plan, ErrorBody> {
        let limits = &self.limits;
        let user_id = request.caller.user_id;
        let catalog = self.perms.catalog();
        let caller_app = catalog.effective(user_id, &request.app).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::Forbidden,
                format!("no app {:?} is installed", request.app),
            )
        })?;
        // An installed app's entry runs with its own limits, and with the files both it and
        // the app starting it may touch: launching never widens what the launcher can do.
        let (name, manifest, files) = match (&req.path, &req.installed) {
            (Some(path), None) => {
                let files = files_allowed(&caller_app);
                (path.clone(), caller_app, files)
            }
            (None, Some(id)) => {
                // An installed app starts no other app's program: it would lend it its user's
                // grants to that app (a built-in launcher is the user at the keyboard).
                if !catalog.is_builtin(&request.app) && request.app != *id {
                    return Err(ErrorBody::new(
                        ErrorCode::Forbidden,
                        format!(
                            "app {:?} may start only its own program, not {id:?}'s",
                            request.app
                        ),
                    ));
                }
                let target = catalog.effective(user_id, id).ok_or_else(|| {
                    ErrorBody::new(
                        ErrorCode::NotFound,
                        format!("no app {id:?} is installed for you"),
                    )
                })?;
                let files = files_allowed(&caller_app).min(files_allowed(&target));
                (id.clone(), target, files)
            }
            _ => {
                return Err(bad(
                    "name what to run: `path` (a module in your files) or `installed` (an app's entry), not both",
                ));
            }
        };
        let app_limits = manifest.limits.unwrap_or_default();
        // Asked for, else the app's manifest, else the default; never above the daemon's cap.
        let limits = vm::JobLimits {
            // 0 means the default, as for a request's own `timeout_ms`.
            timeout_ms: req
                .timeout_ms
                .filter(|&ms| ms > 0)
                .or(app_limits.timeout_ms)
                .unwrap_or(limits.default_timeout_ms)
                .clamp(1, limits.max_timeout_ms),
            memory_mb: req
                .memory_mb
                .or(app_limits.memory_mb)
                .unwrap_or(limits.default_memory_mb)
                .clamp(1, limits.max_memory_mb),
            output_kb: req
                .output_kb
                .or(app_limits.output_kb)
                .unwrap_or(limits.default_output_kb)
                .clamp(1, limits.max_output_kb),
            files,
        };
        Ok(Plan {
            name,
            files_of: manifest.id.clone(),
            bundle: catalog.bundle_dir(&self.places.manifests, user_id, &manifest.id),
            manifest: manifest.into_owned(),
            files,
            limits,
        })
    }

    /// Take a place in the user's queue, or refuse when it is full.
    fn enqueue(&self, user_id: i64) -> Result<Queued, ErrorBody> {
        let mut users = self.users.lock();
        let user = users.entry(user_id).or_insert_with(|| UserJobs {
            slots: Arc::new(Semaphore::new(self.limits.jobs_per_user)),
            waiting: 0,
            budget: Arc::default(),
        });
        if user.waiting >= self.limits.queue_per_user {
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                format!(
                    "{} of your jobs are already waiting, the limit; wait for some to finish",
                    self.limits.queue_per_user
                ),
            ));
        }
        user.waiting += 1;
        Ok(Queued {
            user_id,
            slots: user.slots.clone(),
            budget: user.budget.clone(),
        })
    }

    /// Run the job once the user and the daemon have a slot for it (compiling it first, within
    /// its time), then report its end.
    fn start(self: &Arc<Self>, job: Arc<Job>, pending: Pending, queued: Queued, on: OnBehalf) {
        let compute = self.clone();
        tokio::spawn(async move {
            let overall = compute.overall.clone();
            let _user = queued.slots.acquire_owned().await;
            let _overall = overall.acquire_owned().await;
            if let Some(user) = compute.users.lock().get_mut(&queued.user_id) {
                user.waiting -= 1;
            }
            let started_ms = unix_ms();
            // The budget is held until the VFS has counted what the job wrote: a job that
            // starts meanwhile shares it, and one that starts after reads the new usage.
            let mut held = None;
            let outcome = if job.kill.load(Ordering::Relaxed) {
                killed_before_start()
            } else {
                *job.state.lock() = State::Running;
                match compute.prepare_run(&job, pending, queued.user_id).await {
                    Err(outcome) => outcome,
                    Ok(mut spec) => {
                        let writes = spec.preopen.as_ref().map(|(_, perms)| *perms)
                            == Some(FsPerms::ReadWrite);
                        // Counted when the job starts, not when it was queued: others may
                        // have written.
                        let budget = if writes {
                            compute.file_budget(&on, &queued.budget).await.map(Some)
                        } else {
                            Ok(None)
                        };
                        match budget {
                            Ok(budget) => {
                                held.clone_from(&budget);
                                spec.budget = budget;
                                compute.execute(&job, spec).await
                            }
                            Err(e) => Outcome {
                                ending: Ending::Trap,
                                error: Some(format!("cannot check your storage quota: {}", e.msg)),
                                ..Outcome::default()
                            },
                        }
                    }
                }
            };
            compute.finish(&job, &on, outcome, started_ms).await;
            drop(held);
        });
    }

    /// Compile the job's module (one compile at a time, daemon-wide; the same module only
    /// once), counting the time against the job's; then, for an installed app's program,
    /// check it is still installed with the rights it was started with.
    async fn prepare_run(
        &self,
        job: &Arc<Job>,
        pending: Pending,
        user_id: i64,
    ) -> Result<RunSpec, Outcome> {
        let began = Instant::now();
        let timeout = pending.timeout;
        let compiled = tokio::time::timeout(timeout, self.compile(pending.wasm)).await;
        let program = match compiled {
            Ok(Ok((program, _))) => program,
            Ok(Err(e)) => {
                return Err(Outcome {
                    ending: Ending::Trap,
                    error: Some(e.msg),
                    ..Outcome::default()
                });
            }
            Err(_) => {
                return Err(Outcome {
                    ending: Ending::Timeout,
                    error: Some(format!(
                        "compiling the module took longer than the job's {} ms; it goes on, \
                         and a run after it starts at once",
                        timeout.as_millis()
                    )),
                    ..Outcome::default()
                });
            }
        };
        if job.kill.load(Ordering::Relaxed) {
            return Err(killed_before_start());
        }
        let mut preopen = pending.preopen;
        if let Some(app) = &pending.installed {
            // Uninstalled, or updated to fewer rights, while it waited or compiled: it does
            // not start with what its user no longer grants.
            let catalog = self.perms.catalog();
            let Some(manifest) = catalog.effective(user_id, app) else {
                return Err(Outcome {
                    ending: Ending::Killed,
                    error: Some(format!(
                        "app {app:?} was uninstalled before its program started"
                    )),
                    ..Outcome::default()
                });
            };
            let now = files_allowed(&manifest).min(pending.files);
            if now < pending.files {
                preopen = match (preopen, preopen_perms(now)) {
                    (Some((root, _)), Some(perms)) => Some((root, perms)),
                    _ => None,
                };
            }
        }
        let scope = match &preopen {
            Some((root, _)) => self.file_scope(user_id, &pending.files_of, root)?,
            None => None,
        };
        Ok(RunSpec {
            program,
            scope,
            args: pending.args,
            env: pending.env,
            stdin: pending.stdin,
            preopen,
            budget: None,
            memory_bytes: pending.memory_bytes,
            timeout: timeout
                .saturating_sub(began.elapsed())
                .max(Duration::from_millis(1)),
            output: pending.output,
            kill: job.kill.clone(),
            bus: pending.bus,
        })
    }

    /// The paths `app`'s file capabilities are limited to, for a program's sandbox; None
    /// when they are not limited.
    fn file_scope(
        &self,
        user_id: i64,
        app: &str,
        root: &std::path::Path,
    ) -> Result<Option<guard::FileScope>, Outcome> {
        let read = self.perms.scope(user_id, app, Capability::VfsRead);
        let write = self.perms.scope(user_id, app, Capability::VfsWrite);
        if read.is_none() && write.is_none() {
            return Ok(None);
        }
        let root = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(
            |e| Outcome {
                ending: Ending::Trap,
                error: Some(format!("cannot open your files for the program: {e}")),
                ..Outcome::default()
            },
        )?;
        Ok(Some(guard::FileScope { read, write, root }))
    }

    /// Compile a module (or take it from the cache), one compile at a time daemon-wide. A
    /// compile is never cut short: if its caller gives up, it finishes and is kept.
    async fn compile(&self, wasm: Vec<u8>) -> Result<(runtime::Program, bool), ErrorBody> {
        let runtime = self.runtime.clone();
        if runtime.is_compiled(&wasm) {
            return tokio::task::spawn_blocking(move || runtime.load(&wasm))
                .await
                .map_err(internal)?;
        }
        let turn = self
            .compiles
            .clone()
            .acquire_owned()
            .await
            .map_err(internal)?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            runtime.load(&wasm)
        })
        .await
        .map_err(internal)?
    }

    /// `vm.prepare`: compile and link a module now (the install service, at install time).
    async fn prepare(&self, req: vm::Prepare) -> Result<vm::Prepared, ErrorBody> {
        let wasm = BASE64
            .decode(&req.module)
            .map_err(|e| bad(format!("`module` is not base64: {e}")))?;
        if wasm.len() as u64 > MAX_MODULE_BYTES {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!(
                    "the module is larger than the {} MiB a module may be",
                    MAX_MODULE_BYTES >> 20
                ),
            ));
        }
        let began = Instant::now();
        let runtime = self.runtime.clone();
        let checked = wasm.clone();
        tokio::task::spawn_blocking(move || runtime.check(&checked))
            .await
            .map_err(internal)??;
        let (_, cached) = tokio::time::timeout(PREPARE_TIMEOUT, self.compile(wasm))
            .await
            .map_err(|_| {
                ErrorBody::new(
                    ErrorCode::Timeout,
                    format!(
                        "the module did not compile within {} s",
                        PREPARE_TIMEOUT.as_secs()
                    ),
                )
            })??;
        Ok(vm::Prepared {
            cached,
            micros: began.elapsed().as_micros() as u64,
        })
    }

    /// Where a job's output goes: published as it comes, kept for late readers, capped.
    fn sink(&self, request: &Incoming, job: &Arc<Job>, cap: u64) -> ChannelOutput {
        let (publisher, on, job) = (self.publisher.clone(), request.on_behalf(), job.clone());
        let (written, seq) = (AtomicU64::new(0), AtomicU64::new(0));
        ChannelOutput::new(Arc::new(move |stream: Stream, bytes: &[u8]| {
            let total =
                written.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64;
            if total > cap {
                return Err(OutputLimit);
            }
            let (encoding, data) = match std::str::from_utf8(bytes) {
                Ok(text) => ("utf8", text.to_owned()),
                Err(_) => ("base64", BASE64.encode(bytes)),
            };
            let chunk = vm::OutputChunk {
                seq: seq.fetch_add(1, Ordering::Relaxed),
                stream: stream.as_str().to_owned(),
                encoding: encoding.to_owned(),
                data,
            };
            let kind = match stream {
                Stream::Stdout => vm::JobEventKind::Stdout,
                Stream::Stderr => vm::JobEventKind::Stderr,
            };
            let topic = vm::JobEvents::topic(&vm::JobEvent { id: &job.id, kind });
            publisher.publish(&on, &topic, &chunk);
            job.log.lock().push(chunk);
            Ok(())
        }))
    }

    /// Run the job on a thread of its own; its stdin closes at the deadline so a read wakes.
    async fn execute(&self, job: &Arc<Job>, spec: RunSpec) -> Outcome {
        let runtime = self.runtime.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = Instant::now();
        let timeout = spec.timeout;
        // A plain thread: wasmtime's sync WASI must not run on a tokio worker.
        let spawned = std::thread::Builder::new()
            .name(format!("job-{}", job.id))
            .spawn(move || {
                let _ = tx.send((runtime.run(spec), started.elapsed()));
            });
        if let Err(e) = spawned {
            return Outcome {
                ending: Ending::Trap,
                error: Some(format!("cannot start the job: {e}")),
                ..Outcome::default()
            };
        }
        // A guest blocked reading stdin runs no code the deadline could interrupt: at the
        // deadline its stdin closes, and a program that then ends on its own timed out anyway.
        let expired = Arc::new(AtomicBool::new(false));
        let closer = {
            let (job, expired) = (job.clone(), expired.clone());
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                expired.store(true, Ordering::Relaxed);
                job.stdin.lock().take();
            })
        };
        let outcome = match rx.await {
            Ok((outcome, elapsed))
                if outcome.ending == Ending::Exited && expired.load(Ordering::Relaxed) =>
            {
                Outcome {
                    ending: Ending::Timeout,
                    micros: elapsed.as_micros() as u64,
                    code: None,
                    error: Some(format!(
                        "no exit within {} ms (its stdin was closed at the deadline)",
                        timeout.as_millis()
                    )),
                    ..outcome
                }
            }
            Ok((outcome, elapsed)) => Outcome {
                micros: elapsed.as_micros() as u64,
                ..outcome
            },
            Err(_) => Outcome {
                ending: Ending::Trap,
                error: Some("the job's thread died".into()),
                ..Outcome::default()
            },
        };
        closer.abort();
        outcome
    }

    /// What a job may add to the user's files: the budget the user's running jobs share, or
    /// when none runs, what the quota leaves now.
    async fn file_budget(
        &self,
        on: &OnBehalf,
        shared: &tokio::sync::Mutex<Weak<Budget>>,
    ) -> Result<Arc<Budget>, ErrorBody> {
        let mut shared = shared.lock().await;
        if let Some(budget) = shared.upgrade() {
            return Ok(budget);
        }
        let usage = self
            .requester
            .request_internal(on, &vfs::Usage {}, Duration::from_secs(60))
            .await?;
        let budget = Budget::new(
            usage.quota_bytes.saturating_sub(usage.bytes),
            usage.quota_files.saturating_sub(usage.files),
        );
        *shared = Arc::downgrade(&budget);
        Ok(budget)
    }

    /// Let the VFS catch up with what the job did to the files, then report the end.
    async fn finish(&self, job: &Job, on: &OnBehalf, mut outcome: Outcome, started_ms: i64) {
        if outcome.files.changed {
            let ask = vfs::Rescan {
                since_ms: started_ms,
                job: job.id.clone(),
                removed: outcome.files.removed,
            };
            if let Err(e) = self
                .requester
                .request_internal(on, &ask, Duration::from_secs(60))
                .await
            {
                tracing::warn!(
                    "job {}: the VFS could not rescan after it: {}",
                    job.id,
                    e.msg
                );
            }
        }
        if outcome.files.quota_hit {
            let note = "some writes were refused: they would have passed your storage quota";
            outcome.error = Some(match outcome.error {
                Some(error) => format!("{error}; {note}"),
                None => note.to_owned(),
            });
        }
        *job.state.lock() = State::Finished {
            ending: outcome.ending,
            code: outcome.code,
            error: outcome.error.clone(),
            micros: outcome.micros,
        };
        job.stdin.lock().take();
        let exit = vm::Exit {
            job: job.id.clone(),
            ending: outcome.ending,
            code: outcome.code,
            error: outcome.error,
            micros: outcome.micros,
        };
        self.publisher.publish(
            on,
            &vm::JobEvents::topic_of(&job.id, vm::JobEventKind::Exit),
            &exit,
        );
        let telemetry = json!({ "path": job.path, "job": job.id, "ending": outcome.ending, "code": outcome.code });
        self.publisher
            .publish(on, &TelemetryEvents::topic_of("vm", "exit"), &telemetry);
    }

    fn remember(&self, job: Arc<Job>) {
        let mut jobs = self.jobs.lock();
        let finished: Vec<String> = jobs
            .values()
            .filter(|j| j.user_id == job.user_id && j.finished())
            .map(|j| j.id.clone())
            .collect();
        if finished.len() >= KEEP_FINISHED {
            for id in finished.iter().take(finished.len() + 1 - KEEP_FINISHED) {
                jobs.remove(id);
            }
        }
        jobs.insert(job.id.clone(), job);
    }

    fn kill(&self, request: &Incoming, req: vm::Kill) -> Result<vm::KillAnswer, ErrorBody> {
        let job = self.job(request, &req.job)?;
        if let State::Finished { ending, code, .. } = &*job.state.lock() {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!(
                    "job {} has already finished ({ending:?}, code {code:?})",
                    job.id
                ),
            ));
        }
        job.kill.store(true, Ordering::Relaxed);
        // A guest blocked reading stdin wakes up to end of input.
        job.stdin.lock().take();
        Ok(vm::KillAnswer {
            job: job.id.clone(),
            killing: true,
        })
    }

    async fn stdin(
        &self,
        request: &Incoming,
        req: vm::Stdin,
    ) -> Result<vm::StdinAnswer, ErrorBody> {
        let job = self.job(request, &req.job)?;
        if job.finished() {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!("job {} has finished", job.id),
            ));
        }
        let Some(mut writer) = job.stdin.lock().take() else {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!(
                    "the stdin of job {} is closed (start it with keep_stdin_open)",
                    job.id
                ),
            ));
        };
        let data = req.data.into_bytes();
        let written = tokio::task::spawn_blocking(move || writer.write_all(&data).map(|()| writer))
            .await
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
        match written {
            Ok(writer) if !req.close => {
                let mut stdin = job.stdin.lock();
                // The job may have finished (and closed its stdin) while this was written.
                if !job.finished() {
                    *stdin = Some(writer);
                }
                Ok(vm::StdinAnswer {
                    job: job.id.clone(),
                    open: stdin.is_some(),
                })
            }
            Ok(_) => Ok(vm::StdinAnswer {
                job: job.id.clone(),
                open: false,
            }),
            Err(e) => Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!("job {} is not reading its stdin any more: {e}", job.id),
            )),
        }
    }

    fn list(&self, request: &Incoming, req: vm::Jobs) -> Result<vm::JobsAnswer, ErrorBody> {
        if let Some(id) = req.job {
            let job = self.job(request, &id)?;
            return Ok(vm::JobsAnswer::One(vm::JobDetail {
                summary: job.summary(),
                output: job.log.lock().clone(),
            }));
        }
        let jobs = self
            .jobs
            .lock()
            .values()
            .filter(|job| job.user_id == request.caller.user_id)
            .map(|job| job.summary())
            .collect();
        Ok(vm::JobsAnswer::All { jobs })
    }
}

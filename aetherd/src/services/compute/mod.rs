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
mod running;
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
        let (wasm, cached) = self.module(request, &req, &plan).await?;

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
    /// The module to run (a file of the user's, or an installed app's entry), checked as
    /// far as it can be without compiling, so a module that cannot run is refused at once
    /// (it is compiled once the job has its slots, within its time); and whether it is
    /// compiled already.
    async fn module(
        &self,
        request: &Incoming,
        req: &vm::Run,
        plan: &Plan,
    ) -> Result<(Vec<u8>, bool), ErrorBody> {
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
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || {
            let cached = runtime.is_compiled(&wasm);
            if !cached {
                runtime.check(&wasm)?;
            }
            Ok::<_, ErrorBody>((wasm, cached))
        })
        .await
        .map_err(internal)?
    }

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

//! A job's run: preparing it once it has its slots (the module, its compile, the files it may reach),
//! executing it on its own thread with its output streamed, holding its file writes to the
//! quota, and finishing it (the rescan, the exit event, the job kept for `vm.jobs`).

use super::*;

impl Compute {
    /// Run the job once the user and the daemon have a slot for it (compiling it first, within
    /// its time), then report its end.
    pub(super) fn start(
        self: &Arc<Self>,
        job: Arc<Job>,
        pending: Pending,
        queued: Queued,
        on: OnBehalf,
    ) {
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
    pub(super) async fn prepare_run(
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
    pub(super) fn file_scope(
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

    /// Where a job's output goes: published as it comes, kept for late readers, capped.
    pub(super) fn sink(&self, request: &Incoming, job: &Arc<Job>, cap: u64) -> ChannelOutput {
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
    pub(super) async fn execute(&self, job: &Arc<Job>, spec: RunSpec) -> Outcome {
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
    pub(super) async fn file_budget(
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
    pub(super) async fn finish(
        &self,
        job: &Job,
        on: &OnBehalf,
        mut outcome: Outcome,
        started_ms: i64,
    ) {
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

    pub(super) fn remember(&self, job: Arc<Job>) {
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
}

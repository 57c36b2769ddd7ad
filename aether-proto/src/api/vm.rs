//! `vm.*`: WASI preview1 programs in a sandbox, their output streamed as
//! `vm.job.<job>.stdout|stderr|exit` events.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::calls;

fn is_false(value: &bool) -> bool {
    !*value
}

/// Run a module from the user's files (`path`) or an installed app's entry (`installed`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// A module in the user's files…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// …or the id of an installed app whose entry runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub env: HashMap<String, String>,
    /// Input written before the program starts (at most 60 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Keep stdin open for `vm.stdin` after `stdin` is written.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_stdin_open: bool,
    /// The job's deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_kb: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunAnswer {
    pub job: String,
    /// Where its events go: `vm.job.<job>`.
    pub topic: String,
    /// The compiled module came from the cache.
    pub cached: bool,
    pub limits: JobLimits,
}

/// The limits a job runs with.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JobLimits {
    pub timeout_ms: u64,
    pub memory_mb: u32,
    pub output_kb: u32,
    pub files: FileAccess,
}

/// What a job may do with the user's files.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FileAccess {
    None,
    ReadOnly,
    ReadWrite,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Kill {
    pub job: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KillAnswer {
    pub job: String,
    pub killing: bool,
}

/// Write to a running job's stdin (started with `keep_stdin_open`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stdin {
    pub job: String,
    #[serde(default)]
    pub data: String,
    /// Close stdin after writing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub close: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StdinAnswer {
    pub job: String,
    /// Whether stdin is still open.
    pub open: bool,
}

/// Running and recent jobs; with `job`, that job and its output so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Jobs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum JobsAnswer {
    One(JobDetail),
    All { jobs: Vec<JobSummary> },
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JobSummary {
    pub job: String,
    /// The module's path, or `app:<id>` for an installed app.
    pub path: String,
    pub topic: String,
    pub status: JobState,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JobDetail {
    #[serde(flatten)]
    pub summary: JobSummary,
    /// The output chunks so far (bounded by the job's output limit).
    pub output: Vec<OutputChunk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Finished {
        ending: Ending,
        code: Option<i32>,
        error: Option<String>,
        micros: u64,
    },
}

impl JobState {
    /// The `exit` event of job `job` in this state, once it finished.
    pub fn exit(self, job: String) -> Option<Exit> {
        match self {
            JobState::Finished {
                ending,
                code,
                error,
                micros,
            } => Some(Exit {
                job,
                ending,
                code,
                error,
                micros,
            }),
            JobState::Queued | JobState::Running => None,
        }
    }
}

/// Why a job ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The program exited (see `code`).
    #[default]
    Exited,
    Killed,
    Timeout,
    MemoryLimit,
    OutputLimit,
    Trap,
}

/// `vm.job.<job>.stdout|stderr`: a piece of output as the program wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutputChunk {
    /// Counts up per job across both streams, so a late reader can skip what it has.
    pub seq: u64,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// `utf8` or `base64`.
    pub encoding: String,
    pub data: String,
}

/// `vm.job.<job>.exit`: how the job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Exit {
    pub job: String,
    pub ending: Ending,
    pub code: Option<i32>,
    pub error: Option<String>,
    pub micros: u64,
}

/// Compile a module and link it against the sandbox, so that it is known to run here and
/// its first run starts at once (compiled modules are kept by content hash). Only the
/// install service asks, at install time: an entry that would not link is refused then,
/// not at its first run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prepare {
    /// The module, base64.
    pub module: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Prepared {
    /// It was compiled before (by an earlier install or run).
    pub cached: bool,
    /// How long compiling and linking took.
    pub micros: u64,
}

calls! {
    Run => RunAnswer, "vm.run";
    Kill => KillAnswer, "vm.kill";
    Stdin => StdinAnswer, "vm.stdin";
    Jobs => JobsAnswer, "vm.jobs";
    Prepare => Prepared, "vm.prepare";
}

/// The topic a job's events go to: `vm.job.<job>`, then `.stdout`, `.stderr`, `.exit`.
pub fn job_topic(job: &str) -> String {
    JobEvents::of(job)
}

super::event::id_events! {
    /// A job's events: `vm.job.<job>.stdout|stderr` ([`OutputChunk`]) and `.exit` ([`Exit`]).
    JobEvents, JobEvent, JobEventKind, "vm.job",
    { Stdout => "stdout", Stderr => "stderr", Exit => "exit" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Event;

    #[test]
    fn job_event_topics_read_back_as_they_were_built() {
        for &kind in JobEventKind::ALL {
            let event = JobEvent { id: "j.7", kind };
            let topic = JobEvents::topic(&event);
            let pattern = crate::Pattern::parse(JobEvents::PATTERN).unwrap();
            assert!(pattern.matches(&crate::Topic::parse(&topic).unwrap()));
            assert_eq!(JobEvents::parse(&topic), Some(event));
        }
        for other in [
            "vm.job.j1",
            "vm.job..exit",
            "vm.job.j1.stdin",
            "vm.jobs",
            "ai.stream.x.done",
        ] {
            assert_eq!(JobEvents::parse(other), None, "{other}");
        }
    }
}

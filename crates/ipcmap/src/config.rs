//! Settings: a [`RunRequest`] (what the user asked for, as parsed) becomes a validated
//! [`RunConfig`] before anything is allocated or spawned.

use crate::error::SpawnError;
use crate::partition::Task;
use crate::settings::Settings;
use crate::strategy::Mode;
use crate::transport::spawner;

pub use crate::settings::{DEFAULT_N, DEFAULT_SEED, DEFAULT_SPLITS};
/// The most workers a run may start.
pub const MAX_WORKERS: usize = 512;
/// The most measured runs a configuration may ask for (`--repeat`).
pub const MAX_REPEAT: usize = 10_000;
/// The most warm-up runs a configuration may ask for (`--warmup`).
pub const MAX_WARMUP: usize = 1_000;
/// The largest work factor (`--work`).
pub const MAX_WORK: u32 = 1_000_000;
pub use crate::plan::{AutoRuns, Runs, AUTO_RUNS, DEFAULT_WARMUP};

/// What the user asked for, before validation: the strategies, the [`Settings`] as asked
/// (their `workers` and `splits` come from the two fields here), and how to measure.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// Strategies to run, in order.
    pub modes: Vec<Mode>,
    /// What the strategies read, as asked; validation resolves `workers`, `splits` and
    /// `worker_bin`.
    pub settings: Settings,
    /// Workers; `None` = available CPUs.
    pub workers: Option<usize>,
    /// Parts; `None` = 64, or n when n < 64.
    pub splits: Option<usize>,
    /// Measured runs; `None` = decided by time ([`AUTO_RUNS`]).
    pub repeat: Option<usize>,
    /// With runs decided by time: the fewest and the most (`--min-runs`, `--max-runs`);
    /// `None` = [`AUTO_RUNS`]'s.
    pub run_bounds: (Option<usize>, Option<usize>),
    /// Unmeasured warm-up runs; `None` = [`DEFAULT_WARMUP`].
    pub warmup: Option<usize>,
    /// Run configurations round-robin (A B C, A B C) rather than one after another.
    pub interleave: bool,
    /// Check every result against the sequential one.
    pub verify: bool,
    /// Keep input and output buffers from one run to the next.
    pub reuse_buffers: bool,
    /// Keep the generated input too: runs after the first compute on it as it is.
    pub keep_input: bool,
    /// Run hidden sequential runs behind the speedups where no sequential is asked for.
    pub baseline: bool,
}

/// The default strategy, `split`.
fn split() -> Mode {
    Mode::named("split").unwrap_or(Mode::SEQUENTIAL)
}

impl Default for RunRequest {
    fn default() -> Self {
        RunRequest {
            modes: vec![split()],
            settings: Settings::default(),
            workers: None,
            splits: None,
            repeat: None,
            run_bounds: (None, None),
            warmup: None,
            interleave: true,
            verify: true,
            reuse_buffers: false,
            keep_input: false,
            baseline: true,
        }
    }
}

/// A request that cannot run; each names the flag and the rule.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--workers 0`.
    /// `--min-runs` / `--max-runs` out of order or bounds.
    #[error("--min-runs {min} and --max-runs {max}: need 1 <= min <= max <= {MAX_REPEAT}")]
    RunBounds { min: usize, max: usize },
    /// `--n 0`.
    #[error("--n must be at least 1: there is nothing to compute in 0 values")]
    NoValues,
    #[error("--workers must be at least 1")]
    NoWorkers,
    /// Too many workers.
    #[error("--workers {0} is more than the limit of {MAX_WORKERS} worker processes")]
    TooManyWorkers(usize),
    /// `--splits 0`.
    #[error("--splits must be at least 1")]
    NoSplits,
    /// More parts than elements.
    #[error("--splits {splits} is larger than --n {n}: every part must hold at least one element")]
    SplitsExceedN { splits: usize, n: usize },
    /// `--chunksize 0`.
    #[error("--chunksize must be at least 1")]
    NoChunksize,
    /// `--work 0`.
    #[error("--work must be at least 1")]
    NoWork,
    /// `--repeat 0`.
    #[error("--repeat must be at least 1")]
    NoRepeat,
    /// A count above its documented bound.
    #[error("{flag} {value} is more than the limit of {limit}")]
    TooMany { flag: &'static str, value: u64, limit: u64 },
    /// No mode.
    #[error("--mode names no strategy")]
    NoMode,
    /// `--handshake-timeout` of zero.
    #[error("--handshake-timeout must be more than 0 seconds")]
    NoHandshakeTime,
    /// The buffers would not fit in memory.
    #[error("--n {n} needs about {need_mib} MiB of memory for its buffers and threads, but only {available_mib} MiB is available under {limit}")]
    TooBig { n: usize, need_mib: u64, available_mib: u64, limit: &'static str },
    /// The open-file limit is too low for the pool.
    #[error("--workers {workers} needs about {need} open files, but the limit is {limit} (ulimit -n): raise it or use fewer workers")]
    TooFewFiles { workers: usize, need: u64, limit: u64 },
    /// The strategy cannot run on this machine.
    #[error("--mode {mode}: not available here: {reason}")]
    Unavailable { mode: String, reason: String },
    /// The worker executable is missing or unusable.
    #[error("--worker-bin: {0}")]
    Worker(#[from] SpawnError),
    /// The transport is not in this build.
    #[error("{0}")]
    Transport(SpawnError),
    /// The strategy refuses these settings.
    #[error("--mode {mode}: {reason}")]
    Refused { mode: String, reason: String },
    /// `--keep-input` with `--in-place`.
    #[error("--keep-input cannot go with --in-place: a run in place overwrites the input it would keep; leave one out")]
    KeepInputInPlace,
}

/// A validated run: the strategies to run, how to measure them, and the [`Settings`] each
/// strategy reads.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Strategies to run, in order.
    pub modes: Vec<Mode>,
    /// What the strategies read.
    pub settings: Settings,
    /// Measured runs.
    pub runs: Runs,
    /// Warm-up runs.
    pub warmup: usize,
    /// Run configurations round-robin.
    pub interleave: bool,
    /// Check results.
    pub verify: bool,
    /// Keep buffers from one run to the next.
    pub reuse_buffers: bool,
    /// Keep the generated input with them (`--keep-input`; implies `reuse_buffers`).
    pub keep_input: bool,
    /// Hidden sequential runs give the speedups (`--no-baseline` turns them off).
    pub baseline: bool,
}

/// The automatic plan with `--min-runs` and `--max-runs` where given (a lone `--min-runs`
/// above the default most raises it too).
fn auto_runs(min: Option<usize>, max: Option<usize>) -> Result<AutoRuns, ConfigError> {
    let min_runs = min.unwrap_or(AUTO_RUNS.min.min(max.unwrap_or(usize::MAX)));
    let max_runs = max.unwrap_or(AUTO_RUNS.max.max(min_runs));
    if min_runs == 0 || max_runs < min_runs || max_runs > MAX_REPEAT {
        return Err(ConfigError::RunBounds { min: min_runs, max: max_runs });
    }
    Ok(AutoRuns { min: min_runs, max: max_runs, ..AUTO_RUNS })
}

impl RunRequest {
    /// Checks every rule and resolves every default.
    pub fn validate(self) -> Result<RunConfig, ConfigError> {
        let workers = self.workers.unwrap_or_else(available_cpus);
        let splits = self.check_counts(workers)?;
        self.check_strategies()?;
        let s = &self.settings;
        let now = Settings { workers, splits, ..s.clone() };
        for mode in &self.modes {
            mode.refusal(&now)
                .map_err(|reason| ConfigError::Refused { mode: mode.name().to_string(), reason })?;
        }
        let buffers = self.buffers(&now) as u128;
        check_memory(s.n, buffers, self.owned(), self.verify, self.frames(&now), workers)?;
        // A launcher's ranks are started by the launcher, not by this process.
        let spawns = s.transport.spawns() && self.modes.iter().any(|m| m.uses_processes());
        if spawns {
            let transport = s.transport.transport().map_err(ConfigError::Transport)?;
            let strategy = self.modes.iter().map(|m| m.strategy().files_needed(workers));
            let need = transport.files_needed(workers) + strategy.max().unwrap_or(0);
            check_open_files(workers, need)?;
        }
        let worker_bin = match spawns {
            true => Some(spawner::locate_worker(s.worker_bin.as_deref())?),
            false => s.worker_bin.clone(),
        };
        Ok(RunConfig {
            settings: Settings { worker_bin, ..now },
            runs: match self.repeat {
                Some(n) => Runs::Exact(n),
                None => Runs::Auto(auto_runs(self.run_bounds.0, self.run_bounds.1)?),
            },
            warmup: self.warmup.unwrap_or(DEFAULT_WARMUP),
            interleave: self.interleave,
            verify: self.verify,
            // Kept workers keep their mappings, so their regions are kept too.
            reuse_buffers: self.reuse_buffers
                || self.keep_input
                || s.pool == crate::settings::WorkerPool::Persistent,
            keep_input: self.keep_input,
            baseline: self.baseline,
            modes: self.modes,
        })
    }

    /// Every count within its bounds; the splits the run cuts its input into.
    fn check_counts(&self, workers: usize) -> Result<usize, ConfigError> {
        let s = &self.settings;
        if self.modes.is_empty() {
            return Err(ConfigError::NoMode);
        }
        if s.n == 0 {
            return Err(ConfigError::NoValues);
        }
        if workers == 0 {
            return Err(ConfigError::NoWorkers);
        }
        if workers > MAX_WORKERS {
            return Err(ConfigError::TooManyWorkers(workers));
        }
        let splits = match self.splits {
            Some(0) => return Err(ConfigError::NoSplits),
            Some(k) if k > s.n => return Err(ConfigError::SplitsExceedN { splits: k, n: s.n }),
            Some(k) => k,
            None => crate::settings::default_splits(s.n),
        };
        if s.chunksize == Some(0) {
            return Err(ConfigError::NoChunksize);
        }
        if self.repeat == Some(0) {
            return Err(ConfigError::NoRepeat);
        }
        let too_many = |flag, value: u64, limit: u64| {
            (value > limit).then_some(ConfigError::TooMany { flag, value, limit })
        };
        if let Some(e) = too_many("--repeat", self.repeat.unwrap_or(0) as u64, MAX_REPEAT as u64)
            .or_else(|| too_many("--warmup", self.warmup.unwrap_or(0) as u64, MAX_WARMUP as u64))
            .or_else(|| too_many("--work", s.work.into(), MAX_WORK.into()))
        {
            return Err(e);
        }
        if s.work == 0 {
            return Err(ConfigError::NoWork);
        }
        if s.handshake_timeout.is_zero() {
            return Err(ConfigError::NoHandshakeTime);
        }
        Ok(splits)
    }

    /// Every strategy runs on this machine and over this transport, and the flags agree.
    fn check_strategies(&self) -> Result<(), ConfigError> {
        let s = &self.settings;
        for mode in &self.modes {
            if let Err(reason) =
                mode.strategy().available().and_then(|()| mode.strategy().runs_over(s.transport))
            {
                return Err(ConfigError::Unavailable { mode: mode.name().to_string(), reason });
            }
        }
        if s.in_place && self.keep_input {
            return Err(ConfigError::KeepInputInPlace);
        }
        Ok(())
    }

    /// The n-value buffers the coordinator holds at once: the most any strategy asks for,
    /// a sequential run (asked for, or hidden behind the speedups) counted; with buffers
    /// kept from run to run, a private set and a shared set side by side where the strategies
    /// use both (sequential's vectors, shm's regions).
    fn buffers(&self, now: &Settings) -> usize {
        let sequential = (self.baseline || self.modes.contains(&Mode::SEQUENTIAL))
            .then(|| Mode::SEQUENTIAL.buffers(now));
        let most = |modes: &mut dyn Iterator<Item = &Mode>| {
            modes.map(|m| m.buffers(now)).chain(sequential).max().unwrap_or(0)
        };
        let shared = |m: &&Mode| m.strategy().memory() == crate::strategy::Memory::Shared;
        let kept = self.reuse_buffers
            || self.keep_input
            || self.settings.pool == crate::settings::WorkerPool::Persistent;
        if !kept || !self.modes.iter().any(|m| shared(&m)) {
            return most(&mut self.modes.iter());
        }
        let private = most(&mut self.modes.iter().filter(|m| !shared(m)));
        let kept_shared = self.modes.iter().filter(shared).map(|m| m.buffers(now)).max();
        private + kept_shared.unwrap_or(0)
    }

    /// Whether a strategy's workers keep their own data (owner): the coordinator holds none.
    fn owned(&self) -> bool {
        self.modes.iter().any(|m| m.buffers(&self.settings) == 0)
    }

    /// What the run's frames hold, for the memory they take.
    fn frames(&self, now: &Settings) -> Frames {
        let ships = self.modes.iter().any(|m| m.uses_codec());
        let items = self.modes.iter().any(|m| m.ships_items());
        Frames {
            ships,
            task_values: self.modes.iter().map(|m| m.frame_values(now)).max().unwrap_or(0),
            bytes_per_value: match ships {
                true => encoded_bytes_per_value(now.codec, items),
                false => 8,
            },
        }
    }
}

/// What a run's frames hold: whether its strategies ship data through a codec, the largest
/// task in values, and the bytes a value takes encoded.
struct Frames {
    ships: bool,
    task_values: usize,
    bytes_per_value: u128,
}

/// Bytes a value takes in `codec`'s frames: a block's (1,000 values) share, and where values
/// travel one by one (`items`, item mode) an item's whole encoding; never under 8.
fn encoded_bytes_per_value(codec: crate::codec::CodecKind, items: bool) -> u128 {
    let codec = codec.codec();
    let mut out = Vec::new();
    let block = match codec.encode_block(&[0.5; 1000], &mut out) {
        Ok(()) => out.len().div_ceil(1000),
        Err(_) => 16,
    };
    out.clear();
    let item = match items && codec.encode_item(0.5, &mut out).is_ok() {
        true => out.len(),
        false => 0,
    };
    block.max(item).max(8) as u128
}

/// A worker process's own memory, whatever its tasks: measured peaks are 6 MB (release) to
/// 10 MB (debug) with small tasks.
const WORKER_PROCESS_BYTES: u128 = 12 << 20;

/// CPUs this process may use.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Refuses a run whose buffers cannot fit, before anything is allocated. It counts, in
/// values of 8 bytes: the coordinator's input and output (verification keeps no reference,
/// only a block per CPU); for strategies that ship data, the frames in flight on both sides, each as big
/// as the largest task (`task_values`): the coordinator's frames being sent and received, and
/// each worker's received task, its decoded values, its output and its encoded result. The
/// coordinator's share must fit under its address-space limit (RLIMIT_AS); the whole must fit
/// in `MemAvailable` and under the cgroup's memory limit (a container, a Slurm job), which
/// every process of the run shares.
fn check_memory(
    n: usize,
    buffers: u128,
    owned: bool,
    verify: bool,
    frames: Frames,
    workers: usize,
) -> Result<(), ConfigError> {
    let Frames { ships, task_values, bytes_per_value } = frames;
    let value = 8u128;
    let n = n as u128;
    // Under an address-space limit, each thread's stack counts too: a reader and a sender per
    // worker process, a compute thread per worker of the threads strategy.
    let stacks = THREAD_ADDRESS_SPACE * (2 * workers as u128 + 8);
    // Verification checks a block of 64K values per CPU at a time.
    let checking = if verify { (available_cpus() as u128) << 19 } else { 0 };
    let mut coordinator = n * value * buffers + checking + stacks;
    // Workers that keep their own ranges (owner) hold the input between them, once.
    let mut all_workers = if owned { n * value } else { 0 };
    // Every worker process's own pages (its code, its heap, its threads' stacks).
    let processes = workers as u128 * WORKER_PROCESS_BYTES;
    if ships {
        let values = (task_values as u128).min(n);
        let (task, encoded) = (values * value, values * bytes_per_value);
        let workers = workers as u128;
        let depth = crate::scheduler::DEPTH as u128;
        // Sent frames (queued and spare) and received results, never more than the data twice,
        // at the codec's size; and a result being decoded into place.
        coordinator += (encoded * workers * (2 * depth + 1)).min(2 * n * bytes_per_value) + task;
        // Each worker: its received task frames, the decoded values, its output, its encoded
        // result.
        all_workers =
            (workers * depth * (2 * encoded + 2 * task)).min(2 * n * (bytes_per_value + value));
    }
    all_workers += processes;
    let too_big = |need: u128, (available, limit): (u64, &'static str)| {
        (need > available as u128).then(|| ConfigError::TooBig {
            n: n as usize,
            need_mib: u64::try_from(need >> 20).unwrap_or(u64::MAX),
            available_mib: available >> 20,
            limit,
        })
    };
    if let Some(e) = address_space_left()
        .and_then(|left| too_big(coordinator, (left, "the address-space limit (ulimit -v)")))
    {
        return Err(e);
    }
    if let Some(e) = memory_left().and_then(|left| too_big(coordinator + all_workers, left)) {
        return Err(e);
    }
    Ok(())
}

/// What this process may still allocate, in bytes: `MemAvailable` from /proc/meminfo, or less
/// when an address-space limit (`ulimit -v`, RLIMIT_AS) or the cgroup's memory limit leaves
/// less room.
pub fn available_memory_bytes() -> Option<u64> {
    let shared = memory_left().map(|(bytes, _)| bytes);
    match (shared, address_space_left()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The memory the whole run may still use, and what limits it: `MemAvailable`, or the
/// cgroup's limit less its usage where that is lower.
fn memory_left() -> Option<(u64, &'static str)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let available = (kib * 1024, "MemAvailable");
    Some(match cgroup_memory_left() {
        Some(left) if left < available.0 => (left, "the cgroup's memory limit"),
        _ => available,
    })
}

/// Bytes left under this process's cgroup memory limit (v2 `memory.max` less
/// `memory.current`, over the cgroup and its ancestors; v1 `memory.limit_in_bytes` less
/// `memory.usage_in_bytes`); `None` where there is no limit or it cannot be read.
pub fn cgroup_memory_left() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let read = |path: &std::path::Path| -> Option<u64> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    };
    let mut least: Option<u64> = None;
    let mut keep = |limit: Option<u64>, usage: Option<u64>| {
        if let Some(limit) = limit.filter(|&l| l < (1 << 60)) {
            let left = limit.saturating_sub(usage.unwrap_or(0));
            least = Some(least.map_or(left, |l| l.min(left)));
        }
    };
    for line in groups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next(), fields.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            // v2: the cgroup and each ancestor up to the mount's root ("max": no limit).
            let root = std::path::Path::new("/sys/fs/cgroup");
            let mut dir = root.join(path);
            loop {
                keep(read(&dir.join("memory.max")), read(&dir.join("memory.current")));
                if dir == root || !dir.pop() {
                    break;
                }
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            let root = std::path::Path::new("/sys/fs/cgroup/memory");
            // A namespaced mount shows the cgroup at its root.
            let dir = [root.join(path), root.to_path_buf()]
                .into_iter()
                .find(|d| d.join("memory.limit_in_bytes").exists())?;
            keep(
                read(&dir.join("memory.limit_in_bytes")),
                read(&dir.join("memory.usage_in_bytes")),
            );
        }
    }
    least
}

/// The address space a thread takes: its stack (Rust's 2 MiB) and a margin for its guard
/// page and thread-local storage.
const THREAD_ADDRESS_SPACE: u128 = 3 << 20;

/// Under an address-space limit (`ulimit -v`), glibc's per-thread malloc arenas (64 MiB of
/// address space each) would run a run with many threads out of it long before its memory:
/// keeps one arena. Call once at the start of `main`, before any thread exists.
pub fn fit_the_address_space_limit() {
    if address_space_left().is_some() {
        // SAFETY: mallopt with integer arguments, before any other thread exists.
        unsafe { nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1) };
    }
}

/// Bytes left under RLIMIT_AS above this process's current virtual size; `None` if unlimited.
fn address_space_left() -> Option<u64> {
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_AS).ok()?;
    if soft == nix::sys::resource::RLIM_INFINITY {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let used = line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024;
    Some(soft.saturating_sub(used))
}

/// Raises the soft open-file limit to the hard limit where it is below `need`, the files a
/// pool of `workers` needs, then checks that they fit under it.
pub fn check_open_files(workers: usize, need: u64) -> Result<(), ConfigError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return Ok(());
    };
    let limit = if soft < need && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    if limit < need {
        return Err(ConfigError::TooFewFiles { workers, need, limit });
    }
    Ok(())
}

impl RunConfig {
    /// The chunksize `mode` runs with; `None` where it has no tasks.
    pub fn chunksize_for(&self, mode: Mode) -> Option<usize> {
        mode.chunksize(&self.settings)
    }

    /// The parts `mode` splits the input into (`None` where it does not split).
    pub fn splits_for(&self, mode: Mode) -> Option<usize> {
        mode.splits(&self.settings)
    }

    /// The tasks of one run of `mode`.
    pub fn tasks_for(&self, mode: Mode) -> Vec<Task> {
        mode.tasks(&self.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads_only() -> RunRequest {
        RunRequest {
            settings: crate::settings::Settings { n: 1000, ..crate::settings::Settings::default() },
            modes: vec![Mode::named("threads").unwrap()],
            workers: Some(2),
            ..RunRequest::default()
        }
    }

    /// `threads_only()` changed by `change`.
    fn with(change: impl FnOnce(&mut RunRequest)) -> RunRequest {
        let mut request = threads_only();
        change(&mut request);
        request
    }

    #[test]
    fn rules_are_enforced() {
        let bad: [fn(&mut RunRequest); 12] = [
            |r| r.workers = Some(0),
            |r| r.workers = Some(MAX_WORKERS + 1),
            |r| r.splits = Some(0),
            |r| r.splits = Some(1001),
            |r| r.settings.chunksize = Some(0),
            |r| r.repeat = Some(0),
            |r| r.repeat = Some(usize::MAX),
            |r| r.warmup = Some(usize::MAX),
            |r| r.settings.work = u32::MAX,
            |r| r.settings.work = 0,
            |r| r.modes.clear(),
            |r| r.settings.n = usize::MAX / 8,
        ];
        for change in bad {
            let request = with(change);
            assert!(request.clone().validate().is_err(), "{request:?}");
        }
    }

    #[test]
    fn defaults_resolve() {
        let cfg = threads_only().validate().unwrap();
        assert_eq!(cfg.settings.splits, 64);
        assert_eq!(cfg.chunksize_for(Mode::named("item").unwrap()), Some(125));
        assert_eq!(cfg.chunksize_for(split()), Some(1));
        assert_eq!(cfg.tasks_for(split()).len(), 64);
        assert_eq!(cfg.runs, Runs::Auto(AUTO_RUNS));
        assert_eq!(cfg.warmup, DEFAULT_WARMUP);
        let tiny = with(|r| r.settings.n = 1).validate().unwrap();
        assert_eq!(tiny.settings.splits, 1);
        let empty = with(|r| r.settings.n = 0).validate();
        assert!(matches!(empty, Err(ConfigError::NoValues)), "--n 0 is refused");
    }

    #[test]
    fn a_missing_worker_binary_is_refused_before_anything_runs() {
        let request = RunRequest {
            settings: crate::settings::Settings {
                worker_bin: Some(std::path::PathBuf::from("/nonexistent/worker")),
                ..crate::settings::Settings::default()
            },
            modes: vec![split()],
            ..threads_only()
        };
        let err = request.validate().unwrap_err().to_string();
        assert!(err.contains("cargo build --release --workspace"), "{err}");
    }
}

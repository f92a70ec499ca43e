//! Strategies: the ways of applying the kernel to the data, one file each. A file holds the
//! whole of its strategy: name and help text, defaults (splits, chunksize), what it needs
//! (processes, a codec, shared memory), its coordinator half and its worker half.
//!
//! | strategy     | where it computes   | what crosses a process boundary        |
//! |--------------|---------------------|----------------------------------------|
//! | `sequential` | the coordinator     | nothing                                |
//! | `item`       | worker processes    | every float, encoded on its own        |
//! | `split`      | worker processes    | sub-vectors, each encoded as one block |
//! | `shm`        | worker processes    | (offset, length) only; data is shared  |
//! | `threads`    | coordinator threads | nothing (one address space)            |
//! | `cma`        | worker processes    | ranges; workers copy data in and out   |
//! | `scatterv`   | MPI ranks           | one part per rank, by MPI collectives  |
//! | `pipe`       | worker processes    | sub-vectors as raw bytes, a pipe each  |
//! | `owner`      | worker processes    | nothing: the seed out, a checksum back |
//!
//! To add one: a new file implementing [`Strategy`], and its line in [`REGISTRY`]. The command
//! line (`--mode`), `--mode all`, the worker's dispatch and the reports all read the registry.

pub mod cma;
pub mod item;
pub mod owner;
pub mod pipe;
pub mod scatterv;
pub mod sequential;
pub mod shm;
pub mod split;
pub mod threads;

use crate::error::{PayloadError, RunError};
use crate::memory::BufferPool;
use crate::named::registry_slice;
use crate::partition::{self, Task};
use crate::protocol::{Setup, TaskHeader};
use crate::report::Measurement;
use crate::settings::{Settings, TransportKind};
use crate::shared::{SharedError, SharedRegion};
use std::time::Instant;

mod mode;
pub use mode::Mode;

/// The worker half of a strategy whose frames carry its values encoded with `--codec` (item,
/// split): its function and codec, and the buffers it decodes into and computes from, reused
/// task after task. `S` is the strategy; its own `Compute` impl reads its frames.
pub struct CodedCompute<S> {
    function: crate::kernel::Function,
    work: u32,
    codec: &'static dyn crate::codec::Codec,
    input: Vec<f64>,
    output: Vec<f64>,
    strategy: std::marker::PhantomData<S>,
}

impl<S> CodedCompute<S> {
    /// A worker half for `function` over `codec`.
    pub fn new(
        function: crate::kernel::Function,
        work: u32,
        codec: crate::codec::CodecKind,
    ) -> Self {
        let (input, output, strategy) = (Vec::new(), Vec::new(), std::marker::PhantomData);
        CodedCompute { function, work, codec: codec.codec(), input, output, strategy }
    }
}

/// Every strategy, in the order `--mode all` runs them: its name, then its value. One line per
/// strategy. It makes [`REGISTRY`], and in the tests one `#[test]` per strategy and behaviour:
/// `for_each_strategy!(then!(args))` calls `then!{ [args] sequential => &..., ... }`.
#[macro_export]
macro_rules! for_each_strategy {
    ($($then:ident)::+!($($args:tt)*)) => {
        $($then)::+! { [$($args)*]
            sequential => &sequential::Sequential,
            item => &item::Item,
            split => &split::Split,
            shm => &shm::Shm,
            threads => &threads::Threads,
            cma => &cma::Cma,
            scatterv => &scatterv::Scatterv,
            pipe => &pipe::Pipe,
            owner => &owner::Owner,
        }
    };
}

/// Every strategy, in the order `--mode all` runs them ([`for_each_strategy!`]).
pub static REGISTRY: &[&dyn Strategy] = crate::for_each_strategy!(registry_slice!());

/// Where a strategy wants its input and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// The coordinator's private (huge-page) buffers.
    Private,
    /// Shared memory regions that worker processes inherit.
    Shared,
}

/// What a strategy is and needs, declared in one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// The name on the command line and in reports.
    pub name: &'static str,
    /// One line for `--help`: the tutorial's program it stands for.
    pub about: &'static str,
    /// It starts worker processes.
    pub processes: bool,
    /// It encodes payloads with `--codec`.
    pub codec: bool,
    /// Its frames carry its payload, so big ones are read ahead on a worker thread and decoded
    /// on the coordinator's decoder threads, out of order. A strategy whose data comes in a
    /// stream of its own, in order (a pipe), or not through the coordinator at all (shm, cma)
    /// leaves it off.
    pub frames: bool,
    /// How its data moves, in a few words, for the reports ("frames", "shared memory" ...).
    pub moves: &'static str,
    /// It cuts the input into `--splits` parts (else `splits` is null in its report).
    pub splits: bool,
    /// Where its input and output live.
    pub memory: Memory,
    /// It shares memory or an address space with its workers, so they must be on one host.
    pub one_host: bool,
    /// It moves its data with a transport's collectives (MPI's Scatterv/Gatherv).
    pub collective: bool,
    /// It can write its result over its input (`--in-place`): its workers compute where the
    /// input is (one address space, shared memory, cross-memory attach) rather than from a
    /// copy that arrives in a frame beside it.
    pub in_place: bool,
    /// Its workers make, compute and keep their own ranges of the input (owner): the
    /// coordinator holds neither input nor output, and verifies the workers' checksums.
    pub owned: bool,
}

impl Info {
    /// A strategy that computes in the coordinator, on split parts, in private memory.
    pub const fn local(name: &'static str, about: &'static str) -> Info {
        Info {
            name,
            about,
            processes: false,
            codec: false,
            frames: false,
            moves: "nothing: one address space",
            splits: true,
            memory: Memory::Private,
            one_host: false,
            collective: false,
            in_place: false,
            owned: false,
        }
    }

    /// Its workers make and keep their own ranges of the data (owner).
    pub const fn owning(self) -> Info {
        Info { owned: true, ..self }
    }

    /// It can write its result over its input (`--in-place`).
    pub const fn in_place(self) -> Info {
        Info { in_place: true, ..self }
    }

    /// A strategy on worker processes of this host, its data moved as `moves` says.
    pub const fn processes_here(
        name: &'static str,
        about: &'static str,
        moves: &'static str,
    ) -> Info {
        Info::local(name, about).on_processes().one_host().moving(moves)
    }

    /// It shares memory or an address space with its workers (threads, shared regions,
    /// cross-memory attach): not across hosts.
    pub const fn one_host(self) -> Info {
        Info { one_host: true, ..self }
    }

    /// Its data moves by collectives, one call for all workers each way.
    pub const fn collective(self) -> Info {
        Info { collective: true, moves: "collectives (Scatterv/Gatherv)", ..self }
    }

    /// The same on worker processes.
    pub const fn on_processes(self) -> Info {
        Info { processes: true, ..self }
    }

    /// Its tasks carry data encoded with `--codec`, in their frames.
    pub const fn encoded(self) -> Info {
        Info { codec: true, frames: true, moves: "frames", ..self }
    }

    /// How its data moves, in a few words.
    pub const fn moving(self, moves: &'static str) -> Info {
        Info { moves, ..self }
    }

    /// It does not split the input into parts.
    pub const fn unsplit(self) -> Info {
        Info { splits: false, ..self }
    }

    /// Its input and output are shared regions (so its workers are on one host).
    pub const fn shared(self) -> Info {
        Info { memory: Memory::Shared, one_host: true, ..self }
    }
}

/// One strategy, whole: what it is, what it needs, and both of its halves.
pub trait Strategy: Sync {
    /// What it is and needs.
    fn info(&self) -> Info;
    /// The name on the command line and in reports.
    fn name(&self) -> &'static str {
        self.info().name
    }
    /// One line for `--help`.
    fn about(&self) -> &'static str {
        self.info().about
    }
    /// It starts worker processes.
    fn uses_processes(&self) -> bool {
        self.info().processes
    }
    /// It encodes payloads with `--codec`.
    fn uses_codec(&self) -> bool {
        self.info().codec
    }
    /// It cuts the input into `--splits` parts.
    fn uses_splits(&self) -> bool {
        self.info().splits
    }
    /// Where its input and output live.
    fn memory(&self) -> Memory {
        self.info().memory
    }
    /// Its chunksize when none is given; `None` where it has no tasks.
    fn default_chunksize(&self, _n: usize, _workers: usize) -> Option<usize> {
        Some(1)
    }
    /// The tasks of one run under `s`: by default `chunksize` of the `s.splits` array_split
    /// parts each.
    fn tasks(&self, s: &Settings, chunksize: usize) -> Vec<Task> {
        partition::group(partition::array_split(s.n, s.splits), chunksize)
    }
    /// The coordinator half: computes `run.input` into `run.output`, filling in `run.m`.
    /// The engine has generated the input and timed it; a strategy that stops the clock
    /// itself (before shutting its pool down) sets `run.m.wall_ns`.
    fn run(&self, run: Run<'_>) -> Result<(), RunError>;
    /// Whether it can run on this machine; `Err` says why not (`--mode all` leaves it out,
    /// and asking for it by name is refused with that reason).
    fn available(&self) -> Result<(), String> {
        Ok(())
    }
    /// Whether it can run with settings `s`, checked before anything is allocated or spawned;
    /// `Err` says why not (a bound of its own: a pipe's capacity, a region's size). What every
    /// strategy of a kind refuses (in place, a collective's size) is [`Mode::refusal`]'s.
    fn check(&self, _s: &Settings) -> Result<(), String> {
        Ok(())
    }
    /// The n-value buffers the coordinator holds for one run under `s`: an input and an
    /// output, one where the result goes over the input, none where its workers keep their
    /// own data.
    fn buffers(&self, s: &Settings) -> usize {
        match () {
            _ if self.info().owned => 0,
            _ if s.in_place => 1,
            _ => 2,
        }
    }
    /// Its workers can be kept from run to run (`--pool persistent`): by default yes; no
    /// where each run gives them something new to inherit (pipe's pipes), so that a kept
    /// pool could never serve another of its runs.
    fn keeps_workers(&self) -> bool {
        true
    }
    /// Open files its coordinator half needs for `workers` workers, beyond the transport's
    /// (a pipe's ends per worker).
    fn files_needed(&self, _workers: usize) -> u64 {
        0
    }
    /// Its cost on this machine, predicted from the calibration in `load` (see
    /// [`crate::costs`]); `None` where it has no model, which `predict` says.
    fn predict(&self, _load: &crate::costs::Load<'_>) -> Option<crate::costs::Prediction> {
        None
    }
    /// Its row label in the reports under `s`: its name and the settings that shape it
    /// (codec, splits, chunksize, where it has them).
    fn label(&self, s: &Settings) -> String {
        let info = self.info();
        let mut parts = vec![info.name.to_string()];
        if info.codec {
            parts.push(s.codec.name().to_string());
        }
        if info.splits {
            parts.push(format!("{} splits", s.splits));
        }
        if let Some(c) = self.default_chunksize(s.n, s.workers) {
            parts.push(format!("chunk {}", s.chunksize.unwrap_or(c)));
        }
        parts.join(", ")
    }
    /// Checks one run's result bit for bit against the sequential kernel, outside the timed
    /// region: by default the assembled output against the run's own input, or, where the
    /// result overwrote it (`--in-place`), against the input regenerated from the seed. A
    /// strategy whose result never reaches the coordinator answers otherwise (owner: its
    /// workers' checksums).
    fn verify(&self, s: &Settings, outcome: &Outcome) -> Result<(), RunError> {
        let (name, input) = (self.name(), outcome.input.as_slice());
        match &outcome.output {
            // A kept input (--keep-input) is checked too: the expected result comes from the
            // input regenerated from its seed, so a run that scribbled over it fails here.
            Some(output) if outcome.measurement.input_kept => crate::verify::check_against_seed(
                name,
                s.function,
                s.work,
                s.seed,
                output.as_slice(),
            ),
            Some(output) => crate::verify::check_against_kernel(
                name,
                s.function,
                s.work,
                input,
                output.as_slice(),
            ),
            None => crate::verify::check_against_seed(name, s.function, s.work, s.seed, input),
        }
    }
    /// How [`Strategy::verify`] checks its results under `s`, as reports say it.
    fn verified_by(&self, s: &Settings) -> &'static str {
        match s.in_place {
            true => crate::verify::METHOD_IN_PLACE,
            false => crate::verify::METHOD,
        }
    }
    /// Whether it can run over `transport`; `Err` says why not.
    fn runs_over(&self, transport: TransportKind) -> Result<(), String> {
        let (info, carrier) = (self.info(), transport.info());
        let names = |keep: &dyn Fn(TransportKind) -> bool| {
            let modes: Vec<&str> =
                TransportKind::all().filter(|&t| keep(t)).map(TransportKind::name).collect();
            modes.join(", ")
        };
        if info.one_host && !carrier.one_host {
            let over: Vec<&str> = Mode::all()
                .into_iter()
                .filter(|m| carries(carrier, m.0.info()))
                .map(Mode::name)
                .collect();
            return Err(format!(
                "{} shares memory with its workers, which {} on other hosts do not have; over {} \
                 run {}",
                info.name,
                carrier.workers,
                carrier.name,
                over.join(", ")
            ));
        }
        if !carries(carrier, info) {
            return Err(format!(
                "{} moves data with collectives (MPI's Scatterv/Gatherv), which --transport {} \
                 has not: use --transport {} (for mpi: under mpirun, from a build with --features mpi)",
                info.name,
                carrier.name,
                names(&|t| t.info().collectives.is_some())
            ));
        }
        Ok(())
    }
    /// The worker half, made from the worker's [`Setup`]; strategies without worker
    /// processes have none.
    fn worker(&self, _setup: &Setup) -> Result<Box<dyn Compute>, PayloadError> {
        Err(PayloadError::Setup(format!("{} has no worker half", self.name())))
    }
}

/// Whether a transport described by `carrier` can carry a strategy described by `info`: one
/// that shares memory needs its workers on this host, one that uses collectives needs them.
fn carries(carrier: crate::transport::TransportInfo, info: Info) -> bool {
    (carrier.one_host || !info.one_host) && (carrier.collectives.is_some() || !info.collective)
}

/// A buffer of f64: the coordinator's own memory, or a shared region.
pub enum Buffer {
    /// A vector in the coordinator's memory.
    Owned(Vec<f64>),
    /// A shared memory region (shm mode).
    Shared(SharedRegion),
}

impl Buffer {
    /// The values.
    pub fn as_slice(&self) -> &[f64] {
        match self {
            Buffer::Owned(v) => v,
            Buffer::Shared(region) => region.as_f64s(),
        }
    }

    /// The values, writable.
    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        match self {
            Buffer::Owned(v) => v,
            Buffer::Shared(region) => region.as_f64s_mut(),
        }
    }

    /// The region, for a strategy that shares it.
    pub fn region(&self) -> Option<&SharedRegion> {
        match self {
            Buffer::Shared(region) => Some(region),
            Buffer::Owned(_) => None,
        }
    }
}

/// One run in progress, as the engine hands it to a strategy.
pub struct Run<'a> {
    /// The settings.
    pub cfg: &'a Settings,
    /// The strategy running.
    pub mode: Mode,
    /// The generated input; under `--in-place` the result overwrites it.
    pub input: &'a mut Buffer,
    /// Where the result goes; `None` under `--in-place` (only strategies whose [`Info`] says
    /// `in_place` are run so).
    pub output: Option<&'a mut Buffer>,
    /// What is measured.
    pub m: &'a mut Measurement,
    /// When the run started (its wall time counts from here).
    pub start: Instant,
}

/// A run's buffers as the kernel sees them: input and output, or one buffer in place.
pub fn values<'b>(
    input: &'b mut Buffer,
    output: Option<&'b mut Buffer>,
) -> crate::kernel::Values<'b> {
    match output {
        Some(output) => crate::kernel::Values::Apart(input.as_slice(), output.as_mut_slice()),
        None => crate::kernel::Values::InPlace(input.as_mut_slice()),
    }
}

/// In place, the input a task's worker may have overwritten before it was lost (shm's workers
/// write into it, cma's write back into it): the seed to regenerate it from, the input itself,
/// and which tasks were sent already. A task sent again first gets its range back as it was.
pub struct RerunInPlace<'a> {
    seed: u64,
    input: std::sync::Mutex<&'a mut [f64]>,
    sent: std::sync::Mutex<Vec<bool>>,
}

impl<'a> RerunInPlace<'a> {
    /// For a run in place (`in_place`) over `input`, generated from `seed`; None otherwise.
    pub fn of(seed: u64, input: &'a mut Buffer, in_place: bool) -> Option<RerunInPlace<'a>> {
        in_place.then(|| RerunInPlace {
            seed,
            input: std::sync::Mutex::new(input.as_mut_slice()),
            sent: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Before `task` goes out: the first time nothing; again, its range regenerated.
    pub fn before_send(&self, task: &Task) {
        let again = {
            let mut sent = self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if sent.len() <= task.index {
                sent.resize(task.index + 1, false);
            }
            std::mem::replace(&mut sent[task.index], true)
        };
        if again {
            let span = task.span();
            let mut input = self.input.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(range) = input.get_mut(span.clone()) {
                crate::data::generate_range(self.seed, span.start, range);
            }
        }
    }
}

/// The error of a strategy that cannot work in place handed a run in place (the
/// configuration refuses `--in-place` for it, so this is a guard).
pub fn not_in_place(mode: Mode) -> RunError {
    RunError::Channel {
        what: mode.name().into(),
        message: "this strategy cannot write its result over its input".into(),
    }
}

/// The coordinator half of a strategy whose tasks carry encoded data (item, split): `scatter`
/// makes its scatter/gather from the codec and the run's buffers, then [`on_processes`].
pub fn on_processes_encoded<'a>(
    run: Run<'a>,
    scatter: impl FnOnce(
        &'static dyn crate::codec::Codec,
        &'a [f64],
    ) -> Box<dyn crate::scheduler::ScatterGather + 'a>,
) -> Result<(), RunError> {
    let Run { cfg, mode, input, output, m, start } = run;
    let output = output.ok_or_else(|| not_in_place(mode))?;
    let sg = scatter(cfg.codec.codec(), input.as_slice());
    on_processes(cfg, mode, sg.as_ref(), output.as_mut_slice(), m, start)
}

/// The coordinator half every process strategy shares: the tasks of `mode` under `cfg`
/// scattered over a pool of its workers through `sg` (which reads the run's input), the
/// results decoded into `output` (empty where the workers place them themselves), the figures
/// into `m`. What each worker gets beyond the common setup is `sg`'s to say
/// ([`ScatterGather::attach`](crate::scheduler::ScatterGather::attach)).
pub fn on_processes(
    cfg: &Settings,
    mode: Mode,
    sg: &dyn crate::scheduler::ScatterGather,
    output: &mut [f64],
    m: &mut Measurement,
    start: Instant,
) -> Result<(), RunError> {
    let tasks = mode.tasks(cfg);
    let info = mode.strategy().info();
    let mut process =
        crate::scheduler::ProcessRun::new(cfg, mode.name(), info.frames, info.collective)?;
    process.keeps &= mode.strategy().keeps_workers();
    let work = crate::scheduler::Work { tasks: &tasks, sg, output };
    crate::scheduler::run_on_pool(&process, work, m, start)
}

/// One run's result and what it measured.
pub struct Outcome {
    /// The input it computed on, for verification; give it back to the pool after. Under
    /// `--in-place` it holds the result.
    pub input: Buffer,
    /// The assembled result; `None` under `--in-place`.
    pub output: Option<Buffer>,
    /// What was measured.
    pub measurement: Measurement,
}

/// Runs `mode` once on `cfg`: the prologue every strategy shares (its buffers from `pool`,
/// the input generated into them, both timed), the strategy, and the buffers given back
/// (kept for the next run with `--reuse-buffers`).
pub fn run_once(cfg: &Settings, mode: Mode, pool: &mut BufferPool) -> Result<Outcome, RunError> {
    let strategy = mode.strategy();
    let mut m = Measurement { tracing: cfg.trace, ..Measurement::default() };
    let me = (std::process::id(), None);
    let start = Instant::now();
    let cpu_at_start = crate::trace::cpu_ns();
    let t = crate::trace::Stopwatch::start();
    m.started_at_ns = t.at;
    // A strategy whose workers keep their own data gets no buffers here.
    let owned = strategy.info().owned;
    let n = if owned { 0 } else { cfg.n };
    // Under --keep-input, a kept buffer may hold this seed's input already (never in place:
    // that overwrites it).
    let seed = (!cfg.in_place).then_some(cfg.seed);
    let (mut input, kept) = buffer(pool, strategy.memory(), "ipcmap-input", n, true, seed)?;
    m.input_kept = kept && !owned;
    if !owned && !kept {
        // A stop asked for during a big input is honoured within a millisecond or so.
        let stop = || crate::interrupt::requested().is_some();
        if !crate::data::generate_until(cfg.seed, input.as_mut_slice(), stop) {
            return Err(crate::interrupt::interrupted());
        }
        m.generate_ns = t.elapsed_ns();
        let at = m.started_at_ns + m.generate_ns;
        m.record(me, crate::trace::Phase::Generate, None, m.started_at_ns, at);
    }
    let mut output = None;
    if !cfg.in_place && !owned {
        let t = crate::trace::Stopwatch::start();
        output = Some(buffer(pool, strategy.memory(), "ipcmap-output", cfg.n, false, None)?.0);
        m.assemble_ns = t.elapsed_ns();
        m.record(me, crate::trace::Phase::Assemble, None, t.at, t.at + m.assemble_ns);
    }
    let run = Run { cfg, mode, input: &mut input, output: output.as_mut(), m: &mut m, start };
    strategy.run(run)?;
    if m.wall_ns == 0 {
        m.wall_ns = ns_since(start);
    }
    let cpu = crate::trace::cpu_ns();
    m.cpu_ns = (cpu.0.saturating_sub(cpu_at_start.0), cpu.1.saturating_sub(cpu_at_start.1));
    m.buffers_reused = pool.take_reused();
    Ok(Outcome { input, output, measurement: m })
}

/// A buffer of `n` values from `pool`; a shared one is pre-faulted when `populate` is set.
/// With `input: Some(seed)`, true when it already holds that seed's generated input.
fn buffer(
    pool: &mut BufferPool,
    memory: Memory,
    name: &str,
    n: usize,
    populate: bool,
    input: Option<u64>,
) -> Result<(Buffer, bool), SharedError> {
    Ok(match memory {
        Memory::Private => {
            let (v, holds) = pool.vec(n, input);
            (Buffer::Owned(v), holds)
        }
        Memory::Shared => {
            let (r, holds) = pool.region(name, n, populate, input)?;
            (Buffer::Shared(r), holds)
        }
    })
}

/// Gives a buffer back to `pool`, holding `input`'s generated values where it does (an input
/// that was not computed over in place).
pub fn give_back(pool: &mut BufferPool, buffer: Buffer, input: Option<u64>) {
    match buffer {
        Buffer::Owned(v) => pool.give_vec(v, input),
        Buffer::Shared(r) => pool.give_region(r, input),
    }
}

/// Worker-side time of one task, ns.
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskTiming {
    /// Decoding the task payload.
    pub decode_ns: u64,
    /// In the kernel.
    pub compute_ns: u64,
    /// Encoding the result payload.
    pub encode_ns: u64,
    /// Generating the task's input in the worker (owner), before the rest.
    pub generate_ns: u64,
}

/// The worker half of a process strategy: what a worker does with one task.
pub trait Compute {
    /// Computes the task whose header and payload are given, appending the result payload to
    /// `out`. Any bytes may arrive here: malformed input is an error, never a panic.
    fn compute(&mut self, task: TaskIn<'_>, out: TaskOut<'_>) -> Result<(), PayloadError>;
}

/// A task as a worker's compute gets it: its header and payload.
pub struct TaskIn<'a> {
    /// The task's header.
    pub header: &'a TaskHeader,
    /// The strategy's payload (any bytes may arrive).
    pub payload: &'a [u8],
}

/// Where a worker's compute puts its result: the payload bytes and the time it took.
pub struct TaskOut<'a> {
    /// The result payload, appended to.
    pub bytes: &'a mut Vec<u8>,
    /// Decode, compute and encode time.
    pub timing: &'a mut TaskTiming,
}

/// Tests: one task through a worker half, timing thrown away.
#[cfg(test)]
pub(crate) trait ComputeOnce {
    fn once(
        &mut self,
        header: &TaskHeader,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), PayloadError>;
}

#[cfg(test)]
impl<C: Compute + ?Sized> ComputeOnce for C {
    fn once(
        &mut self,
        header: &TaskHeader,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), PayloadError> {
        let timing = &mut TaskTiming::default();
        self.compute(TaskIn { header, payload }, TaskOut { bytes: out, timing })
    }
}

/// Runs `f`, adding the time it took to `ns`: a worker half's decode, compute or encode.
pub(crate) fn timed<T>(ns: &mut u64, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    *ns += ns_since(t);
    out
}

/// `function` applied `work` times to `input` into `output`, resized to match: the compute
/// step of every worker half that holds its task's values.
pub(crate) fn compute_into(
    function: crate::kernel::Function,
    work: u32,
    input: &[f64],
    output: &mut Vec<f64>,
) {
    output.resize(input.len(), 0.0);
    crate::kernel::apply_work(function, work, input, output);
}

/// Nanoseconds since `t`.
pub(crate) fn ns_since(t: std::time::Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_each_strategy_once_and_modes_round_trip() {
        let names: Vec<&str> = REGISTRY.iter().map(|s| s.name()).collect();
        assert_eq!(&names[..5], ["sequential", "item", "split", "shm", "threads"]);
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} twice in the registry");
        }
        for mode in Mode::all() {
            assert_eq!(Mode::named(mode.name()), Some(mode));
        }
        assert_eq!(Mode::named("nope"), None);
        assert_eq!(Mode::SEQUENTIAL, Mode::named("sequential").unwrap());
    }
}

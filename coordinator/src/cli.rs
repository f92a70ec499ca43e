//! The coordinator's command line (a contract: scripts and tests depend on it), and its
//! translation into the library's [`RunRequest`].

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use ipcmap::codec::CodecKind;
use ipcmap::config::{RunRequest, DEFAULT_N, DEFAULT_SEED};
use ipcmap::kernel::Function;
use ipcmap::report::{Exporter, EXPORTERS};
use ipcmap::scheduler::{OnWorkerExit, TaskTimeout};
use ipcmap::settings::WorkerPool;
use ipcmap::settings::{Settings, TransportKind};
use ipcmap::strategy::{Mode, REGISTRY};
use ipcmap::sweep::Grid;
use std::path::PathBuf;
use std::time::Duration;

/// Apply a math function to a big f64 vector sequentially, on threads, or on real worker
/// processes over ipc-channel, and report where every millisecond went.
#[derive(Debug, Parser)]
#[command(
    name = "coordinator",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub export: ExportArgs,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = format_values(), help_heading = "Output")]
    pub format: Format,
    /// Also draw where each strategy's time went, phase by phase, as an SVG bar chart.
    #[arg(long, value_name = "FILE.svg", help_heading = "Output")]
    pub plot: Option<PathBuf>,
    /// Save the result (every strategy's, verified bit for bit) as a .npy file numpy loads
    /// (numpy.load), written whole or not at all, after the runs. Its input is
    /// generated from --seed; a run, not a sweep.
    #[arg(long, value_name = "FILE.npy", help_heading = "Output")]
    pub save_output: Option<PathBuf>,
    /// Record what every process did per task and write it as a Chrome trace (open it in
    /// ui.perfetto.dev or chrome://tracing): one track per process, one span per phase per task.
    #[arg(long, value_name = "FILE.json", help_heading = "Output")]
    pub trace: Option<PathBuf>,
    /// Record the same spans and draw the median run of each strategy as a timeline SVG: one
    /// row per process, colored by phase, the wall time marked.
    #[arg(long, value_name = "FILE.svg", help_heading = "Output")]
    pub timeline: Option<PathBuf>,
    /// After the table, the figures told in sentences: where each strategy's time went, its
    /// largest cost, and the --work from which it would match the sequential run.
    #[arg(long, help_heading = "Output")]
    pub explain: bool,
    /// After the run, print everything the workers wrote on stderr (kept in the run folder
    /// otherwise, and summed up as one line per failed worker).
    #[arg(long, global = true, help_heading = "Output")]
    pub verbose: bool,
    /// Predict each strategy before it runs (this machine's calibration) and put the
    /// prediction beside the measurement: predicted_wall_ms and prediction_error in the
    /// exports, and in the summary.
    #[arg(long, global = true, help_heading = "Output")]
    pub predict: bool,
    /// Measure this machine's calibration anew (for predict and --predict), not the cached one.
    #[arg(long, global = true, help_heading = "Output")]
    pub recalibrate: bool,
    /// With predict: your own function's cost, ns a value on one core (timed in numpy, as the
    /// README shows), in place of --fn's measured cost: a prediction for a function ipcmap
    /// does not run.
    #[arg(long, value_name = "NS", help_heading = "Output")]
    pub fn_ns: Option<f64>,
    /// With predict: as if this machine had N cores that compute at once, its per-core costs
    /// kept (extrapolated, not measured; memory and channels as measured here).
    #[arg(long, value_name = "N", help_heading = "Output")]
    pub cores: Option<usize>,
    /// With predict --transport mpi: the ranks on hosts joined by a link of this many Gb/s
    /// each way (extrapolated, not measured: each rank's costs as TCP over this machine's
    /// loopback, rank 0's link carrying every byte); with --link-us.
    #[arg(long, value_name = "GBPS", help_heading = "Output", requires = "link_us")]
    pub link_gbps: Option<f64>,
    /// With predict --transport mpi: the link's one-way delay, µs; with --link-gbps.
    #[arg(long, value_name = "US", help_heading = "Output", requires = "link_gbps")]
    pub link_us: Option<f64>,
    /// Every table on the terminal: phases, traffic, who was busy, CPU time and the workers
    /// (the summary and the wall-time table otherwise; the exports always hold everything).
    #[arg(long, global = true, help_heading = "Output")]
    pub details: bool,
    /// Colour on the terminal: auto (when stdout is a terminal and NO_COLOR is not set),
    /// always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"], help_heading = "Output")]
    pub color: String,
}

impl Cli {
    /// Whether to colour what goes to a stream that `is_terminal` (stdout or stderr), by
    /// `--color` and `NO_COLOR` (any non-empty value turns auto off).
    pub fn colors(&self, is_terminal: bool) -> bool {
        match self.color.as_str() {
            "always" => true,
            "never" => false,
            // A launcher's pseudo-terminal (mpirun's, srun's) is not the reader's: what it
            // forwards often ends in a pipe or a file.
            _ => {
                is_terminal
                    && crate::mpi::launched_rank().is_none()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        }
    }
}

impl Cli {
    /// The transport the command line asks for.
    pub fn transport(&self) -> TransportKind {
        match &self.command {
            None => self.run.common.transport(),
            Some(Command::Sweep(args)) => args.common.transport(),
            Some(Command::Probe(args)) => args.transport,
            Some(
                Command::Completions { .. }
                | Command::Man
                | Command::Schema { .. }
                | Command::Predict,
            ) => TransportKind::default(),
        }
    }
}

impl Cli {
    /// Parses `args` (the program's name first) as [`Parser::try_parse_from`] does, but with a
    /// subcommand named after some flags moved before them, so `coordinator --transport mpi
    /// probe` means `coordinator probe --transport mpi`, as under mpirun one writes it. A
    /// word that is a flag's value (`--plot probe`) stays where it is.
    pub fn try_parse_hoisted(
        args: impl IntoIterator<Item = std::ffi::OsString>,
    ) -> Result<Cli, clap::Error> {
        use clap::CommandFactory;
        let mut args: Vec<std::ffi::OsString> = args.into_iter().collect();
        let command = Cli::command();
        let takes_value = |flag: &str| {
            let (long, short) = match flag.strip_prefix("--") {
                Some(long) => (Some(long), None),
                None => (None, flag.strip_prefix('-').and_then(|s| s.chars().next())),
            };
            command.get_arguments().any(|a| {
                (long.is_some() && a.get_long() == long
                    || short.is_some() && a.get_short() == short)
                    && a.get_action().takes_values()
            })
        };
        // `predict` takes the run's own flags, wherever they are written: they are read as a
        // run's, then the command is predict.
        if let Some(at) = args.iter().skip(1).position(|a| a == "predict") {
            args.remove(at + 1);
            let mut cli = Cli::try_parse_from(args)?;
            cli.command = Some(Command::Predict);
            return Ok(cli);
        }
        let mut i = 1;
        while i < args.len() {
            let Some(word) = args[i].to_str() else { break };
            if word == "--" || command.find_subcommand(word).is_some() {
                if word != "--" && i > 1 {
                    let sub = args.remove(i);
                    args.insert(1, sub);
                }
                break;
            }
            let value_follows = word.starts_with('-')
                && !word.contains('=')
                && (word.starts_with("--") || word.len() == 2);
            i += if value_follows && takes_value(word) { 2 } else { 1 };
        }
        Cli::try_parse_from(args)
    }
}

/// Examples and exit codes, after the options of `--help`.
const AFTER_HELP: &str = "\
Examples:
  coordinator --workers 4 --mode split       the tutorial's split: 64 sub-vectors, 4 workers
  coordinator -m all --explain               every strategy, then the figures in sentences
  coordinator sweep --codec raw,pickle --transport local,uds --export-csv target/grid.csv
  coordinator probe --transport uds          the channel's floors: spawn, echo GB/s, 8-byte µs
  mpirun -np 5 coordinator --transport mpi -m all   across MPI ranks (built with --features mpi)

Exit status:
  0      done, every result verified
  1      a run failed: a worker, a verification, a write (one line says which)
  2      bad input, refused before any worker started
  128+N  stopped by signal N (130: SIGINT, 143: SIGTERM): nothing written, no worker left";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a grid of configurations on the same data: every combination of the comma-separated
    /// lists given (e.g. --workers 1,2,4 --codec bincode,raw). When no list has more than one
    /// value and neither --splits nor --chunksize is given: the tutorial's 8x8 grid of
    /// --splits x --chunksize (1,2,4,...,128) in split mode.
    Sweep(Box<SweepArgs>),
    /// Measure the raw channel floors with the worker in echo mode: spawn-and-hello, an echo of
    /// split-sized messages (GB/s both ways), and a pipelined 8-byte echo (µs per message).
    Probe(ProbeArgs),
    /// Print a shell completion script for SHELL on stdout (e.g. `coordinator completions
    /// bash > ~/.local/share/bash-completion/completions/coordinator`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout (`coordinator man | man -l -`).
    Man,
    /// Predict every strategy of the run the flags describe, without starting a worker: its
    /// wall time with an interval, where it goes, and from which --work it beats sequential;
    /// from this machine's calibration (measured in seconds the first time, then cached;
    /// --recalibrate measures it anew; --plot FILE.svg draws when it pays: each strategy's
    /// predicted speedup against the math a value costs). `coordinator predict -m all --n 1e8`.
    Predict,
    /// Print the JSON Schema (draft 2020-12) of what `--format json` writes, generated from
    /// the types that write it: `report` (a run's or sweep's report), `probe`, `codecs`
    /// (`probe --codecs`).
    Schema {
        /// The document.
        #[arg(default_value = "report", value_parser = clap::builder::PossibleValuesParser::new(ipcmap::report::schema::KINDS))]
        kind: String,
    },
}

/// The flags of `probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Workers for the spawn-and-hello probe [default: the number of available CPUs].
    #[arg(long, value_parser = parse_count)]
    pub workers: Option<usize>,
    /// Bytes per echoed message [default: one of 64 parts of 10,000,000 f64, 1,250,000].
    #[arg(long, default_value_t = 1_250_000, value_parser = parse_count)]
    pub bytes: usize,
    /// The worker executable [default: $IPCMAP_WORKER, else `worker` next to this executable].
    #[arg(long)]
    pub worker_bin: Option<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = format_values())]
    pub format: Format,
    /// The transport probed (mpi: under mpirun, where spawn becomes MPI's init time).
    #[arg(long, default_value_t = TransportKind::default(), value_parser = transport_values())]
    pub transport: TransportKind,
    /// Message sizes, bytes, of the per-size latency and bandwidth table (osu_latency's and
    /// osu_bw's shape) [default: 8 and powers of 4 from 16 to 4194304]; 0 for none.
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub sizes: Vec<usize>,
    /// Measure the codecs instead: every codec's block encode and decode in GB/s and its bytes
    /// per value at 1, 1,000, 156,250 and 10,000,000 values, beside memcpy, in seconds (no
    /// worker is started).
    #[arg(long)]
    pub codecs: bool,
    /// With --codecs: the block sizes to measure, in values [default: 1,1000,156250,10000000].
    /// With --fn: the values of the streamed measurement [default: 10000000].
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub values: Vec<usize>,
    /// Time functions instead (built-ins or expressions, as a run's --fn; several separated
    /// by ';' or as repeated flags): each one's ns a value on one core, in cache and streamed,
    /// beside a value's copy through memory, and whether it is memory- or compute-bound here
    /// (no worker is started).
    #[arg(long = "fn", value_name = "FN", value_parser = parse_functions, conflicts_with = "codecs")]
    pub function: Vec<Functions>,
}

/// The flags of one run.
#[derive(Debug, Args)]
#[command(next_help_heading = "What to run")]
pub struct RunArgs {
    /// Strategy, a list of them (sequential,threads,split), or all of them.
    #[arg(short, long, value_delimiter = ',', default_value = "split", value_parser = mode_values())]
    pub mode: Vec<ModeArg>,
    /// Worker processes (or threads) [default: the number of available CPUs].
    #[arg(short, long)]
    pub workers: Option<usize>,
    /// Number of f64 elements (10000000, 10_000_000, 1e7 and 10M alike).
    #[arg(short, long, default_value_t = DEFAULT_N, value_parser = parse_count)]
    pub n: usize,
    /// The element-wise function: exp, ln, sin, sqrt, or your own expression in x, as numpy
    /// would write it: numbers, + - * / ** (and unary minus), parentheses, exp ln log sin cos
    /// tan sqrt abs tanh, min(a, b), max(a, b), where(cond, a, b) with < <= > >= == !=, and pi
    /// and e. Example: --fn 'exp(-x*x/2)*sin(3*x)+sqrt(x)'.
    #[arg(long = "fn", value_name = "FN", default_value = "exp", value_parser = parse_function)]
    pub function: Function,
    /// Apply the function K times per element (each on x + 0·y, so the result is unchanged):
    /// K times the math per byte moved, to see where parallelism starts to pay.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub work: u32,
    /// Parts the input is split into (split, shm, threads, cma, pipe) [default: 64, or n if smaller]. An n
    /// that does not divide evenly is split like numpy.array_split: the first n % S parts get
    /// one element more.
    #[arg(long, value_parser = parse_count)]
    pub splits: Option<usize>,
    /// Items (item mode) or parts (split, shm, threads) per task message [default: item:
    /// Pool.map's ceil(n / (4 * workers)); others: 1].
    #[arg(long, value_parser = parse_count)]
    pub chunksize: Option<usize>,
    /// How item and split payloads become bytes.
    #[arg(long, value_parser = codec_values(), default_value = "bincode")]
    pub codec: CodecKind,
    /// Send frames bigger than this as a train of frames of at most this many bytes (4096 to
    /// 1 GiB; 0 = every frame whole, the default). Under about 207 KiB a frame stays off
    /// ipc-channel's fragmentation path (local transport).
    #[arg(long, value_name = "BYTES", default_value_t = 0, value_parser = parse_frame_bytes)]
    pub frame_bytes: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags that take one value in a run and in a sweep alike.
#[derive(Debug, Args)]
#[command(next_help_heading = "How to measure")]
pub struct CommonArgs {
    /// Seed of the random input (fixed by default, so two runs see the same data).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Measured runs per strategy, exactly [default: at least 7, more until 0.5 s of runs,
    /// at most 15]. The report gives every run, the median, the spread and min/max.
    #[arg(short, long, value_parser = parse_count)]
    pub repeat: Option<usize>,
    /// With runs decided by time (no --repeat): the fewest measured runs [default: 7; 3
    /// where a run takes 2 s or more].
    #[arg(long, value_parser = parse_count, conflicts_with_all = ["repeat", "cold"])]
    pub min_runs: Option<usize>,
    /// With runs decided by time (no --repeat): the most measured runs [default: 15].
    #[arg(long, value_parser = parse_count, conflicts_with_all = ["repeat", "cold"])]
    pub max_runs: Option<usize>,
    /// Unmeasured warm-up runs before the measured ones [default: 1].
    #[arg(long, value_parser = parse_count)]
    pub warmup: Option<usize>,
    /// The tutorial's own timing: one measured run, no warm-up, fresh memory
    /// (= --repeat 1 --warmup 0). One cold sample: no interval, no verdict.
    #[arg(long, conflicts_with_all = ["repeat", "warmup"])]
    pub cold: bool,
    /// Run each strategy's runs one after another (AAA BBB) instead of round-robin (A B, A B).
    #[arg(long)]
    pub no_interleave: bool,
    /// The worker executable [default: $IPCMAP_WORKER, else `worker` next to this executable].
    #[arg(long)]
    pub worker_bin: Option<PathBuf>,
    /// Skip checking results against the sequential result (the report says verified: null).
    #[arg(long)]
    pub no_verify: bool,
    /// Keep input and output buffers from one run to the next (after the first run, times leave
    /// out allocating and faulting in fresh memory; the report says buffers_reused: true).
    #[arg(long)]
    pub reuse_buffers: bool,
    /// Keep the generated input too (implies --reuse-buffers): runs after the first compute on
    /// data that exists, as numpy's warm `exp(data, out=result)` is timed, so only the
    /// strategy's work is measured (generate 0; the report says input_kept: true). Every run
    /// is still verified. Not with --in-place.
    #[arg(long)]
    pub keep_input: bool,
    /// Write the result over the input, as numpy.exp(data, out=data) does: one buffer, 8 bytes
    /// a value. For sequential, threads, shm and cma (their workers compute where the data
    /// is); --mode all then means those four. Verified against the input regenerated from
    /// its seed.
    #[arg(long)]
    pub in_place: bool,
    /// Run no hidden sequential runs behind the speedups (speedups are then null, unless
    /// sequential is asked for): for an input only the workers can hold (owner at an n past
    /// the coordinator's memory, over MPI).
    #[arg(long)]
    pub no_baseline: bool,
    /// Seconds a worker may take to connect and say hello.
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Seconds a worker may hold a task before it is killed and its tasks re-run; 0 = no
    /// deadline [default: 20 times the slowest task so far, at least 5 s].
    #[arg(long, value_name = "SECONDS")]
    pub task_timeout: Option<f64>,
    /// When a worker dies mid-run: hand its tasks to the others (retry) or stop (abort).
    #[arg(long, value_enum, default_value_t = OnWorkerExit::Retry)]
    pub on_worker_exit: OnWorkerExit,
    /// How long worker processes live: per-run (started inside each run's timer, as the
    /// tutorial's Pool) or persistent (started once and kept for every later run of the same
    /// kind, as a Pool created once serves many map calls; their start is reported on its
    /// own, as a one-time cost). Persistent implies --reuse-buffers, so that shared regions
    /// stay mapped in the workers.
    #[arg(long, value_enum, default_value_t = WorkerPool::PerRun)]
    pub pool: WorkerPool,
    /// How workers are started and reached: processes on this machine over ipc-channel or
    /// plain Unix sockets, or the ranks of an MPI job (run under `mpirun -np N`: rank 0
    /// coordinates, ranks 1..N-1 work; needs a build with --features mpi). A sweep takes a
    /// list of those that spawn their workers (local,uds,tcp,pipe) and compares them.
    #[arg(long, value_delimiter = ',', default_values_t = [TransportKind::default()], value_parser = transport_values())]
    pub transport: Vec<TransportKind>,
    /// Threads that decode big results (over 64 KiB) into place off the coordinator's gather
    /// thread; 0 = all on the gather thread [default: one per worker, on the cores left after
    /// the gather thread and one worker: none on 2 cores].
    #[arg(long, value_name = "N", value_parser = parse_decode_threads)]
    pub decode_threads: Option<usize>,
}

/// The values of `--transport`: every transport of the registry, with its help line.
fn transport_values() -> impl clap::builder::TypedValueParser<Value = TransportKind> {
    let values: Vec<PossibleValue> =
        TransportKind::all().map(|t| PossibleValue::new(t.name()).help(t.info().about)).collect();
    // The parser allows only the registry's names.
    PossibleValuesParser::new(values).map(|name| TransportKind::named(&name).unwrap_or_default())
}

/// The flags of a sweep: lists where a run takes one value.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Strategies (comma-separated; `all` = every strategy).
    #[arg(short, long, value_delimiter = ',', value_parser = mode_values())]
    pub mode: Vec<ModeArg>,
    /// Worker counts.
    #[arg(short, long, value_delimiter = ',', value_parser = parse_count)]
    pub workers: Vec<usize>,
    /// Element counts [default: 10,000,000] (`1e9` and `1_000_000_000` alike).
    #[arg(short, long, value_delimiter = ',', value_parser = parse_count)]
    pub n: Vec<usize>,
    /// Functions (see the run's --fn), separated by ';' or given as repeated flags; a comma
    /// separates them too where it is outside parentheses (--fn exp,sin).
    #[arg(long = "fn", value_name = "FN", value_parser = parse_functions)]
    pub function: Vec<Functions>,
    /// Work factors (see the run's --work).
    #[arg(long, value_delimiter = ',', value_name = "K")]
    pub work: Vec<u32>,
    /// Split counts.
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub splits: Vec<usize>,
    /// Chunk sizes.
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub chunksize: Vec<usize>,
    /// Codecs, or `all` for every codec.
    #[arg(long, value_delimiter = ',', value_parser = codec_list_values())]
    pub codec: Vec<CodecChoice>,
    /// Frame train sizes, bytes (see the run's --frame-bytes; 0 = whole frames): a list shows
    /// ipc-channel's cliff at about 207 KiB.
    #[arg(long, value_delimiter = ',', value_name = "BYTES", value_parser = parse_frame_bytes)]
    pub frame_bytes: Vec<usize>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub export: ExportArgs,
    /// Write every configuration's report as CSV (a header, one row per configuration).
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Write every configuration's report as JSON (one object per line).
    #[arg(long, value_name = "FILE.json")]
    pub json: Option<PathBuf>,
    /// Draw the median wall times: a heatmap over two varying parameters, a line over one.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, default_value = "table", value_parser = format_values())]
    pub format: Format,
}

/// Files a run or a sweep writes its reports to, beside what it prints on stdout.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Output files")]
pub struct ExportArgs {
    /// Also write the reports as one JSON document (an array, one object per report).
    #[arg(long, value_name = "FILE.json")]
    pub export_json: Option<PathBuf>,
    /// Also write the reports as CSV (a header, one row per report).
    #[arg(long, value_name = "FILE.csv")]
    pub export_csv: Option<PathBuf>,
    /// Also write the reports as Markdown (the table hyperfine's --export-markdown gives).
    #[arg(long, value_name = "FILE.md")]
    pub export_markdown: Option<PathBuf>,
    /// Also write the whole report as one self-contained HTML page (no network, no scripts):
    /// the setup, every table, the warnings, the charts, the timeline and the explanation. A
    /// plain run records spans for its timeline, as --timeline does.
    #[arg(long, visible_alias = "html", value_name = "FILE.html")]
    pub export_html: Option<PathBuf>,
}

impl ExportArgs {
    /// Each `--export-FORMAT` given: the flag, the format's name and the file.
    pub fn files(&self) -> Vec<(&'static str, &'static str, &std::path::Path)> {
        [
            ("--export-json", "json", &self.export_json),
            ("--export-csv", "csv", &self.export_csv),
            ("--export-markdown", "markdown", &self.export_markdown),
            ("--export-html", "html", &self.export_html),
        ]
        .into_iter()
        .filter_map(|(flag, format, path)| Some((flag, format, path.as_deref()?)))
        .collect()
    }
}

/// `--format`: an exporter's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format(pub String);

impl Format {
    /// The exporter it names (always one: the parser accepts registry names only).
    pub fn exporter(&self) -> &'static dyn Exporter {
        ipcmap::report::exporter(&self.0).unwrap_or(ipcmap::report::EXPORTERS[0])
    }
}

/// The values of `--format`: every exporter of the registry, with its help line.
fn format_values() -> impl clap::builder::TypedValueParser<Value = Format> {
    let values: Vec<PossibleValue> =
        EXPORTERS.iter().map(|e| PossibleValue::new(e.name()).help(e.about())).collect();
    PossibleValuesParser::new(values).map(Format)
}

/// `--mode`: a strategy's name, or `all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModeArg(pub String);

/// The values of `--mode`: every strategy of the registry, with its help line, and `all`.
fn mode_values() -> impl clap::builder::TypedValueParser<Value = ModeArg> {
    let mut values: Vec<PossibleValue> =
        REGISTRY.iter().map(|s| PossibleValue::new(s.name()).help(s.about())).collect();
    values.push(PossibleValue::new("all").help("every strategy, one table"));
    PossibleValuesParser::new(values).map(ModeArg)
}

/// One value of a sweep's `--codec` list: a codec, or every codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecChoice(Option<CodecKind>);

impl CodecChoice {
    /// The codecs a list names, in its order, `all` expanded in registry order, each once.
    pub fn expand(list: &[CodecChoice]) -> Vec<CodecKind> {
        let mut out: Vec<CodecKind> = Vec::new();
        for choice in list {
            let named: Vec<CodecKind> = match choice.0 {
                Some(codec) => vec![codec],
                None => CodecKind::all().collect(),
            };
            for codec in named {
                if !out.contains(&codec) {
                    out.push(codec);
                }
            }
        }
        out
    }
}

/// The values of a sweep's `--codec`: every codec of the registry, and `all`.
fn codec_list_values() -> impl clap::builder::TypedValueParser<Value = CodecChoice> {
    let mut values: Vec<PossibleValue> = ipcmap::codec::REGISTRY
        .iter()
        .map(|c| PossibleValue::new(c.name()).help(c.about()))
        .collect();
    values.push(PossibleValue::new("all").help("every codec"));
    PossibleValuesParser::new(values).map(|name| CodecChoice(CodecKind::named(&name)))
}

/// The values of `--codec`: every codec of the registry, with its help line.
fn codec_values() -> impl clap::builder::TypedValueParser<Value = CodecKind> {
    let values: Vec<PossibleValue> = ipcmap::codec::REGISTRY
        .iter()
        .map(|c| PossibleValue::new(c.name()).help(c.about()))
        .collect();
    PossibleValuesParser::new(values).map(|name| {
        CodecKind::named(&name).unwrap_or(CodecKind::BINCODE) // the parser allows only names
    })
}

fn parse_frame_bytes(s: &str) -> Result<usize, String> {
    match parse_count(s)? {
        0 => Ok(0),
        n if (4096..=1 << 30).contains(&n) => Ok(n),
        n => Err(format!("{n} bytes is not 0 or within 4096 to 1073741824")),
    }
}

fn parse_decode_threads(s: &str) -> Result<usize, String> {
    match parse_count(s)? {
        n if n <= 256 => Ok(n),
        n => Err(format!("{n} decoder threads is more than 256")),
    }
}

/// A whole number as people write big ones: `10000000`, `10_000_000`, `1e7`, `2.5e6`, with an
/// optional unit (`k`, `M`, `G`: thousands; `KiB`, `MiB`, `GiB`: powers of 1024).
/// A built-in function's name, or an expression (one line, pointing at the column, if bad).
fn parse_function(s: &str) -> Result<Function, String> {
    Function::parse(s).map_err(|e| match e {
        ipcmap::kernel::expr::ExprError::Empty => {
            let names = Function::ALL.map(Function::name).join(", ");
            format!("{e}: give a built-in ({names}) or an expression in x, e.g. 'exp(-x*x/2)'")
        }
        e => e.to_string(),
    })
}

/// Some functions of a sweep's `--fn`: one flag's worth.
#[derive(Clone, Debug)]
pub struct Functions(pub Vec<Function>);

/// A sweep's `--fn` value: functions separated by ';', or by ',' outside parentheses.
fn parse_functions(s: &str) -> Result<Functions, String> {
    let mut parts = Vec::new();
    for piece in s.split(';') {
        let (mut depth, mut start) = (0i32, 0);
        for (i, c) in piece.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&piece[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&piece[start..]);
    }
    let parts: Vec<&str> = parts.into_iter().filter(|p| !p.trim().is_empty()).collect();
    if parts.is_empty() {
        return Err("no function given".into());
    }
    let functions = parts
        .iter()
        .map(|p| parse_function(p).map_err(|e| format!("'{}': {e}", p.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Functions(functions))
}

fn parse_count(s: &str) -> Result<usize, String> {
    let bad =
        || format!("'{s}' is not a whole number (10000000, 10_000_000, 1e7, 64KiB and 1M are)");
    let text = s.trim().replace('_', "");
    let units: [(&str, f64); 6] = [
        ("KiB", 1024.0),
        ("MiB", 1048576.0),
        ("GiB", 1073741824.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
    ];
    let (number, scale) = units
        .iter()
        .find_map(|&(unit, scale)| text.strip_suffix(unit).map(|n| (n, scale)))
        .unwrap_or((&text, 1.0));
    if let Ok(n) = number.parse::<usize>() {
        return n.checked_mul(scale as usize).ok_or_else(bad);
    }
    // Scientific or fractional forms must still name a whole number, exactly.
    let looks =
        !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || "eE.+".contains(c));
    let value = number.parse::<f64>().ok().filter(|_| looks).ok_or_else(bad)? * scale;
    match value.fract() == 0.0 && value >= 0.0 && value < 2f64.powi(53) {
        true => Ok(value as usize),
        false => Err(bad()),
    }
}

impl ModeArg {
    /// The strategies this names; `all` under `--in-place` is those that can work in place.
    fn modes(&self, transport: TransportKind, in_place: bool) -> Vec<Mode> {
        match self.0.as_str() {
            "all" => Mode::available(transport)
                .into_iter()
                .filter(|m| !in_place || m.works_in_place())
                .collect(),
            name => Mode::named(name).into_iter().collect(),
        }
    }
}

impl CommonArgs {
    /// The transport asked for (a sweep's first).
    pub fn transport(&self) -> TransportKind {
        self.transport.first().copied().unwrap_or_default()
    }

    /// A request with these flags and every other field at its default.
    fn to_request(&self) -> Result<RunRequest, String> {
        if !(self.handshake_timeout.is_finite()
            && self.handshake_timeout > 0.0
            && self.handshake_timeout < 1e6)
        {
            return Err("--handshake-timeout must be a number of seconds above 0".into());
        }
        let task_timeout =
            match self.task_timeout {
                None => TaskTimeout::Auto,
                Some(0.0) => TaskTimeout::Off,
                Some(s) if s.is_finite() && s > 0.0 && s < 1e6 => {
                    TaskTimeout::After(Duration::from_secs_f64(s))
                }
                Some(_) => return Err(
                    "--task-timeout must be 0 (no deadline) or a number of seconds below 1000000"
                        .into(),
                ),
            };
        let (repeat, warmup) =
            if self.cold { (Some(1), Some(0)) } else { (self.repeat, self.warmup) };
        Ok(RunRequest {
            settings: Settings {
                seed: self.seed,
                task_timeout,
                worker_bin: self.worker_bin.clone(),
                handshake_timeout: Duration::from_secs_f64(self.handshake_timeout),
                on_worker_exit: self.on_worker_exit,
                pool: self.pool,
                transport: self.transport(),
                decode_threads: self.decode_threads,
                in_place: self.in_place,
                ..Settings::default()
            },
            repeat,
            run_bounds: (self.min_runs, self.max_runs),
            warmup,
            interleave: !self.no_interleave,
            verify: !self.no_verify,
            reuse_buffers: self.reuse_buffers,
            keep_input: self.keep_input,
            baseline: !self.no_baseline,
            ..RunRequest::default()
        })
    }
}

impl RunArgs {
    /// The library's request, not yet validated.
    pub fn to_request(&self) -> Result<RunRequest, String> {
        if self.common.transport.len() > 1 {
            return Err("a run takes one --transport; `coordinator sweep --transport local,uds` compares several".into());
        }
        let mut request = self.common.to_request()?;
        request.modes = Vec::new();
        for m in
            self.mode.iter().flat_map(|m| m.modes(self.common.transport(), self.common.in_place))
        {
            if !request.modes.contains(&m) {
                request.modes.push(m);
            }
        }
        (request.workers, request.splits) = (self.workers, self.splits);
        let s = &mut request.settings;
        (s.n, s.function, s.work) = (self.n, self.function, self.work);
        (s.chunksize, s.codec, s.frame_bytes) = (self.chunksize, self.codec, self.frame_bytes);
        Ok(request)
    }
}

impl SweepArgs {
    /// The grid and the request every point starts from.
    pub fn to_grid(&self) -> Result<(Grid, RunRequest), String> {
        let base = self.common.to_request()?;
        let mut modes: Vec<Mode> = Vec::new();
        for m in
            self.mode.iter().flat_map(|m| m.modes(self.common.transport(), self.common.in_place))
        {
            if !modes.contains(&m) {
                modes.push(m);
            }
        }
        let mut transports: Vec<TransportKind> = Vec::new();
        for &t in &self.common.transport {
            if !transports.contains(&t) {
                transports.push(t);
            }
        }
        if transports.len() > 1 && transports.iter().any(|t| t.launched()) {
            return Err("a sweep compares transports that spawn their workers; one started by a launcher (mpi) runs on its own".into());
        }
        let mut grid = Grid {
            modes,
            transports,
            workers: self.workers.clone(),
            n: self.n.clone(),
            functions: self.function.iter().flat_map(|f| f.0.iter().copied()).collect(),
            works: self.work.clone(),
            codecs: CodecChoice::expand(&self.codec),
            splits: self.splits.clone(),
            chunksizes: self.chunksize.clone(),
            frame_bytes: self.frame_bytes.clone(),
        };
        // Nothing varies and the grid's own axes are free: the tutorial's 8x8 grid.
        let split_only = grid.modes.iter().all(|m| m.name() == "split");
        if grid.varying().is_empty()
            && grid.splits.is_empty()
            && grid.chunksizes.is_empty()
            && split_only
        {
            let tutorial = Grid::tutorial();
            grid.modes = tutorial.modes;
            grid.splits = tutorial.splits;
            grid.chunksizes = tutorial.chunksizes;
        }
        Ok((grid, base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_documented_command_parses() {
        let cli =
            Cli::try_parse_from(["coordinator", "--workers", "4", "--mode", "split"]).unwrap();
        assert_eq!(cli.run.workers, Some(4));
        assert_eq!(cli.run.mode, [ModeArg("split".into())]);
        assert_eq!(cli.run.n, 10_000_000);
        let cli = Cli::try_parse_from([
            "coordinator",
            "-m",
            "sequential,threads,split",
            "-w",
            "2",
            "-n",
            "1e6",
            "-r",
            "3",
        ])
        .unwrap();
        let names: Vec<&str> =
            cli.run.to_request().unwrap().modes.iter().map(|m| m.name()).collect();
        assert_eq!(names, ["sequential", "threads", "split"]);
        assert_eq!(
            (cli.run.workers, cli.run.n, cli.run.common.repeat),
            (Some(2), 1_000_000, Some(3))
        );
        let cli = Cli::try_parse_from(["coordinator", "--n", "1_000"]).unwrap();
        assert_eq!(cli.run.n, 1000);
        assert!(cli.command.is_none());
    }

    #[test]
    fn a_bare_sweep_is_the_tutorial_grid_and_lists_multiply() {
        let Some(Command::Sweep(args)) =
            Cli::try_parse_from(["coordinator", "sweep"]).unwrap().command
        else {
            panic!("sweep parses as a subcommand")
        };
        assert_eq!(args.to_grid().unwrap().0.points(&RunRequest::default()).len(), 64);
        let Some(Command::Sweep(args)) = Cli::try_parse_from([
            "coordinator",
            "sweep",
            "--workers",
            "1,2,4",
            "--mode",
            "item,split",
        ])
        .unwrap()
        .command
        else {
            panic!("sweep parses as a subcommand")
        };
        assert_eq!(args.to_grid().unwrap().0.points(&RunRequest::default()).len(), 6);
    }

    #[test]
    fn counts_are_taken_as_people_write_them() {
        for (text, n) in [
            ("10000000", 10_000_000),
            ("10_000_000", 10_000_000),
            ("1e7", 10_000_000),
            ("1E9", 1_000_000_000),
            ("2.5e6", 2_500_000),
            ("64KiB", 65_536),
            ("1MiB", 1_048_576),
            ("10M", 10_000_000),
            ("0", 0),
        ] {
            assert_eq!(parse_count(text), Ok(n), "{text}");
        }
        for text in ["1.5", "1e-3", "-5", "ten", "", "1e400", "inf", "NaN", "5MB"] {
            assert!(parse_count(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_sweep_takes_all_for_every_codec_once() {
        let Some(Command::Sweep(args)) =
            Cli::try_parse_from(["coordinator", "sweep", "--codec", "raw,all"]).unwrap().command
        else {
            panic!("sweep parses as a subcommand")
        };
        let codecs = CodecChoice::expand(&args.codec);
        assert_eq!(codecs.len(), ipcmap::codec::REGISTRY.len());
        assert_eq!(codecs[0], CodecKind::RAW, "in the order given, each once");
        assert!(Cli::try_parse_from(["coordinator", "--codec", "all"]).is_err());
    }

    #[test]
    fn a_subcommand_after_flags_is_read_as_if_written_first() {
        let hoisted = |args: &[&str]| Cli::try_parse_hoisted(args.iter().map(Into::into));
        let cli =
            hoisted(&["coordinator", "--transport", "uds", "probe", "--format", "json"]).unwrap();
        let Some(Command::Probe(probe)) = cli.command else { panic!("probe: {:?}", cli.command) };
        assert_eq!((probe.transport.name(), probe.format.0.as_str()), ("uds", "json"));
        let cli =
            hoisted(&["coordinator", "--verbose", "--n", "1000", "sweep", "--workers", "1,2"])
                .unwrap();
        assert!(matches!(cli.command, Some(Command::Sweep(_))));
        // A flag's value that happens to be a subcommand's name is a value.
        let cli = hoisted(&["coordinator", "--plot", "probe", "--n", "1000"]).unwrap();
        assert!(cli.command.is_none() && cli.plot.is_some_and(|p| p.as_os_str() == "probe"));
    }
}

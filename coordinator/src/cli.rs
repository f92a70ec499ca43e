//! The coordinator's command line (a contract: scripts and tests depend on it), and its
//! translation into the library's [`RunRequest`].

use clap::{Args, Parser, ValueEnum};
use ipcmap::codec::CodecKind;
use ipcmap::config::{RunRequest, DEFAULT_N, DEFAULT_SEED};
use ipcmap::kernel::Function;
use ipcmap::scheduler::OnWorkerExit;
use ipcmap::strategy::Mode;
use std::path::PathBuf;
use std::time::Duration;

/// Apply a math function to a big f64 vector sequentially, on threads, or on real worker
/// processes over ipc-channel, and report where every millisecond went.
#[derive(Debug, Parser)]
#[command(name = "coordinator", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub run: RunArgs,
    /// Output: a table for people, or JSON (one object per line) or CSV for programs.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The flags of one run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Strategy: sequential (baseline, no IPC), item (every float its own value, like
    /// pool.map(exp, data)), split (sub-vectors as blocks, like pool.map(exp, split(data, S))),
    /// shm (shared memory, only ranges travel), threads (split on OS threads), or all of them.
    #[arg(long, value_enum, default_value_t = ModeArg::Split)]
    pub mode: ModeArg,
    /// Worker processes (or threads) [default: the number of available CPUs].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Number of f64 elements (underscores allowed: 10_000_000).
    #[arg(long, default_value_t = DEFAULT_N, value_parser = parse_count)]
    pub n: usize,
    /// The element-wise function.
    #[arg(long = "fn", value_enum, default_value_t = FnArg::Exp)]
    pub function: FnArg,
    /// Parts the input is split into (split, shm, threads) [default: 64, or n if smaller]. An n
    /// that does not divide evenly is split like numpy.array_split: the first n % S parts get
    /// one element more.
    #[arg(long, value_parser = parse_count)]
    pub splits: Option<usize>,
    /// Items (item mode) or parts (split, shm, threads) per task message [default: item:
    /// Pool.map's ceil(n / (4 * workers)); others: 1].
    #[arg(long, value_parser = parse_count)]
    pub chunksize: Option<usize>,
    /// How item and split payloads become bytes.
    #[arg(long, value_enum, default_value_t = CodecArg::Bincode)]
    pub codec: CodecArg,
    /// Seed of the random input (fixed by default, so two runs see the same data).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Measured runs per strategy; the report gives min, median and max.
    #[arg(long, default_value_t = 1, value_parser = parse_count)]
    pub repeat: usize,
    /// Unmeasured warm-up runs before the measured ones.
    #[arg(long, default_value_t = 0, value_parser = parse_count)]
    pub warmup: usize,
    /// The worker executable [default: $IPCMAP_WORKER, else `worker` next to this executable].
    #[arg(long)]
    pub worker_bin: Option<PathBuf>,
    /// Skip checking results against the sequential result (the report says verified: null).
    #[arg(long)]
    pub no_verify: bool,
    /// Seconds a worker may take to connect and say hello.
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// When a worker dies mid-run: hand its tasks to the others (retry) or stop (abort).
    #[arg(long, value_enum, default_value_t = OnExitArg::Retry)]
    pub on_worker_exit: OnExitArg,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Sequential,
    Item,
    Split,
    Shm,
    Threads,
    All,
}

/// `--fn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FnArg {
    Exp,
    Ln,
    Sin,
    Sqrt,
}

/// `--codec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CodecArg {
    Bincode,
    Postcard,
    Raw,
}

/// `--on-worker-exit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnExitArg {
    Retry,
    Abort,
}

fn parse_count(s: &str) -> Result<usize, String> {
    s.replace('_', "")
        .parse::<usize>()
        .map_err(|_| format!("'{s}' is not a whole number"))
}

impl RunArgs {
    /// The library's request, not yet validated.
    pub fn to_request(&self) -> Result<RunRequest, String> {
        if !(self.handshake_timeout.is_finite()
            && self.handshake_timeout > 0.0
            && self.handshake_timeout < 1e6)
        {
            return Err("--handshake-timeout must be a number of seconds above 0".into());
        }
        Ok(RunRequest {
            modes: match self.mode {
                ModeArg::Sequential => vec![Mode::Sequential],
                ModeArg::Item => vec![Mode::Item],
                ModeArg::Split => vec![Mode::Split],
                ModeArg::Shm => vec![Mode::Shm],
                ModeArg::Threads => vec![Mode::Threads],
                ModeArg::All => Mode::ALL.to_vec(),
            },
            workers: self.workers,
            n: self.n,
            function: match self.function {
                FnArg::Exp => Function::Exp,
                FnArg::Ln => Function::Ln,
                FnArg::Sin => Function::Sin,
                FnArg::Sqrt => Function::Sqrt,
            },
            splits: self.splits,
            chunksize: self.chunksize,
            codec: match self.codec {
                CodecArg::Bincode => CodecKind::Bincode,
                CodecArg::Postcard => CodecKind::Postcard,
                CodecArg::Raw => CodecKind::Raw,
            },
            seed: self.seed,
            repeat: self.repeat,
            warmup: self.warmup,
            worker_bin: self.worker_bin.clone(),
            verify: !self.no_verify,
            handshake_timeout: Duration::from_secs_f64(self.handshake_timeout),
            on_worker_exit: match self.on_worker_exit {
                OnExitArg::Retry => OnWorkerExit::Retry,
                OnExitArg::Abort => OnWorkerExit::Abort,
            },
        })
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
        assert_eq!(cli.run.mode, ModeArg::Split);
        assert_eq!(cli.run.n, 10_000_000);
        let cli = Cli::try_parse_from(["coordinator", "--n", "1_000"]).unwrap();
        assert_eq!(cli.run.n, 1000);
    }
}

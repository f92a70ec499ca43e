//! The coordinator's work: plan a run or sweep (every output opened, every setting validated),
//! execute it, write its reports through the chosen exporter; or run the probe.

use crate::cli::{Cli, Command, Format, ProbeArgs, SweepArgs};
use crate::files::Files;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ipcmap::config::RunConfig;
use ipcmap::engine::Session;
use ipcmap::error::RunError;
use ipcmap::report::Export;
use ipcmap::rundir::RunDir;
use ipcmap::strategy::Mode;
use ipcmap::sweep::Axis;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Parses the command line and does what it says; the exit status says how it went.
pub fn run() -> ExitCode {
    let mut cli = match Cli::try_parse_hoisted(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // Under a launcher every rank parses the same line: rank 0 alone says what is wrong.
        Err(_) if crate::mpi::launched_rank().is_some_and(|r| r != 0) => return ExitCode::from(2),
        Err(e) => return usage_error(&one_line(&e.render().to_string())),
    };
    // What only prints (no run folder, no signal handlers, no worker).
    match &cli.command {
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "coordinator", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Schema { kind }) => {
            let text = ipcmap::report::schema::schema_text(kind).unwrap_or_default();
            return match std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => usage_error(&format!("writing the schema: {e}")),
            };
        }
        Some(Command::Man) => {
            use clap::CommandFactory;
            let man = clap_mangen::Man::new(Cli::command());
            return match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => usage_error(&format!("writing the man page: {e}")),
            };
        }
        _ => {}
    }
    if cli.transport().launched() {
        let session = match crate::mpi::start() {
            Ok(session) => session,
            Err(message) => return usage_error(&message),
        };
        if !crate::mpi::is_coordinator(&session) {
            // mpirun forwards SIGINT/SIGTERM to every rank: a worker rank notes it and goes
            // on, so that rank 0 can stop the run, say so in its one line, clean up and end
            // the job (MPI_Abort), instead of the job dying with no word.
            let _ = ipcmap::interrupt::install();
            watch_for_a_stop();
            return ExitCode::from(crate::mpi::serve(session));
        }
        let code = match crate::mpi::fit_workers(&mut cli) {
            Ok(()) => run_parsed(&cli),
            Err(message) => {
                say(&format!("error: {message}"));
                2
            }
        };
        return ExitCode::from(crate::mpi::finish(session, code));
    }
    // mpirun -np 2 coordinator, without --transport mpi: every rank would run a benchmark of
    // its own on the same cores, each unaware of the others. Said once, by rank 0.
    if let Some(ranks) = crate::mpi::launched_size().filter(|&n| n > 1) {
        if crate::mpi::launched_rank().unwrap_or(0) == 0 {
            say(&format!(
                "warning: started by a launcher as one of {ranks} ranks without --transport mpi: every rank runs a benchmark of its own on the same machine; add --transport mpi to run one across the ranks"
            ));
        }
    }
    ExitCode::from(run_parsed(&cli))
}

/// How long a worker rank that was asked to stop waits for rank 0 to end the job before it
/// ends it itself, under mpirun: long enough for rank 0, signalled too (mpirun signals every
/// rank), to say so in its line and abort before mpirun, seeing a rank leave, kills the rest;
/// short enough that a rank signalled alone (kill) ends the job within seconds.
const WORKER_RANK_STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(1500);

/// The same under Slurm's direct launch (`srun --mpi=pmix`): a task that leaves does not end
/// the step's others there, so rank 0's line is safe and a worker rank leaves almost at once.
/// `scancel` signals every task, and rank 0's MPI_Abort does not always reach the others
/// through Slurm's PMIx (measured: half the jobs waited out the grace), so this short grace is
/// what ends the job within a second rather than at KillWait.
const WORKER_RANK_STOP_GRACE_SLURM: std::time::Duration = std::time::Duration::from_millis(300);

/// On a worker rank: once SIGINT, SIGTERM or SIGHUP arrived, the job ends within the grace
/// for this rank's launcher, by rank 0 or, failing that, by this rank leaving (an MPI process
/// that exits without finalising ends its job).
fn watch_for_a_stop() {
    let grace = if crate::mpi::started_by_slurm() {
        WORKER_RANK_STOP_GRACE_SLURM
    } else {
        WORKER_RANK_STOP_GRACE
    };
    let _ = std::thread::Builder::new().name("stop-watch".into()).spawn(move || loop {
        if let Some(signal) = ipcmap::interrupt::requested() {
            std::thread::sleep(grace);
            std::process::exit(128 + signal);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    });
}

/// Runs a parsed command line (on rank 0 under MPI); returns the exit status.
fn run_parsed(cli: &Cli) -> u8 {
    // First the handlers (they start no thread), so that a signal from here on is a stop
    // with its line and the run folder removed, never a death that leaves the folder behind.
    if let Err(e) = ipcmap::interrupt::install() {
        say(&format!("error: cannot install signal handlers: {e}"));
        return 1;
    }
    // Every process the run starts, and every one they start, ends with it (dropped last).
    let _reaper = crate::reaper::Reaper::adopt();
    // Before any thread: it points TMPDIR at this run's own folder.
    let rundir = match RunDir::create() {
        Ok(dir) => dir,
        Err(e) => return usage_error(&e.to_string()),
    };
    let verbose = cli.verbose;
    let code = match &cli.command {
        Some(Command::Probe(args)) => probe(args),
        Some(Command::Predict) => crate::predict::run(cli),
        _ => match plan(cli) {
            Ok(plan) => finish(execute(plan)),
            Err(message) => usage_error(&message),
        },
    };
    if verbose {
        for (path, text) in ipcmap::transport::spawner::captured_stderr() {
            let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into());
            say(&format!("--- {name} ---\n{}", text.trim_end()));
        }
    }
    drop(rundir);
    code
}

/// Everything checked, resolved and opened before the first worker starts.
struct Plan {
    configs: Vec<RunConfig>,
    /// Axes that vary (a sweep); `None` for a plain run.
    axes: Option<Vec<Axis>>,
    format: Format,
    /// Every file it writes besides stdout.
    files: Files,
    /// Print the explanation after the report.
    explain: bool,
    /// How the terminal's table shows it.
    view: ipcmap::report::View,
    /// Warnings on stderr in colour.
    warn_color: bool,
    /// `--predict` (and `--recalibrate`).
    predict: (bool, bool),
}

fn plan(cli: &Cli) -> Result<Plan, String> {
    if cli.fn_ns.is_some() || cli.cores.is_some() {
        return Err("--fn-ns and --cores go with predict: a run measures its own function on its own cores (coordinator predict --fn-ns NS --cores N ...)".into());
    }
    if cli.link_gbps.is_some() {
        return Err("--link-gbps and --link-us go with predict --transport mpi: a run measures the link it has".into());
    }
    match &cli.command {
        None => {
            let mut request = cli.run.to_request()?;
            // The HTML report draws the timeline too.
            request.settings.trace =
                cli.trace.is_some() || cli.timeline.is_some() || cli.export.export_html.is_some();
            let config = request.validate().map_err(|e| e.to_string())?;
            if cli.explain && !matches!(cli.format.0.as_str(), "table" | "markdown") {
                return Err("--explain goes with --format table or markdown (stdout is for programs otherwise)".into());
            }
            Ok(Plan {
                configs: vec![config],
                axes: None,
                format: cli.format.clone(),
                files: Files::for_run(cli)?,
                explain: cli.explain,
                view: view(cli),
                warn_color: cli.colors(std::io::stderr().is_terminal()),
                predict: (cli.predict, cli.recalibrate),
            })
        }
        Some(Command::Sweep(_)) if cli.save_output.is_some() => {
            Err("--save-output saves one run's result; a sweep has many (run the one you want)"
                .into())
        }
        Some(Command::Sweep(args)) => plan_sweep(args).map(|p| Plan {
            view: view(cli),
            warn_color: cli.colors(std::io::stderr().is_terminal()),
            predict: (cli.predict, cli.recalibrate),
            ..p
        }),
        Some(
            Command::Probe(_)
            | Command::Completions { .. }
            | Command::Man
            | Command::Schema { .. }
            | Command::Predict,
        ) => Err("this command is not a run".into()),
    }
}

/// How the terminal's table shows the reports: `--details`, and colour where stdout takes it.
fn view(cli: &Cli) -> ipcmap::report::View {
    ipcmap::report::View {
        details: cli.details,
        color: cli.colors(std::io::stdout().is_terminal()),
    }
}

fn plan_sweep(args: &SweepArgs) -> Result<Plan, String> {
    let (grid, base) = args.to_grid()?;
    let configs = grid.configs(&base).map_err(|e| e.to_string())?;
    let axes = grid.varying();
    if args.plot.is_some() && axes.len() > 2 {
        let names: Vec<_> = axes.iter().map(|a| a.name()).collect();
        return Err(format!(
            "--plot draws a sweep of one or two varying parameters; this one varies {}",
            names.join(", ")
        ));
    }
    Ok(Plan {
        configs,
        axes: Some(axes),
        format: args.format.clone(),
        files: Files::for_sweep(args)?,
        explain: false,
        view: ipcmap::report::View::default(),
        warn_color: false,
        predict: (false, false),
    })
}

/// The progress bar of a plan's runs, on stderr where it is a terminal (a sweep says how many
/// runs it holds at most first).
fn progress_bar(plan: &Plan) -> ProgressBar {
    // An upper bound: auto plans may stop before their maximum.
    let mut total: usize =
        plan.configs.iter().map(|c| c.modes.len() * (c.warmup + c.runs.max())).sum();
    // The engine adds hidden sequential runs for each workload without a sequential of its own.
    let mut baselines = Vec::new();
    for c in plan.configs.iter().filter(|c| c.baseline && !c.modes.contains(&Mode::SEQUENTIAL)) {
        let workload = (c.settings.n, c.settings.function, c.settings.seed, c.settings.work);
        if !baselines.contains(&workload) {
            baselines.push(workload);
            total += c.warmup + c.runs.max();
        }
    }
    if plan.axes.is_some() && std::io::stderr().is_terminal() {
        say(&format!("sweep: {} configurations, at most {total} runs", plan.configs.len()));
    }
    // The bar counts values computed, not runs: a run of 10^8 values weighs 100 times one of
    // 10^6, so the time left does not jump when the sweep reaches its big configurations
    // (hidden baselines and early stops make it an upper bound). indicatif draws nothing when
    // stderr is not a terminal.
    let values: u64 = plan
        .configs
        .iter()
        .map(|c| work_weight(c).saturating_mul((c.modes.len() * (c.warmup + c.runs.max())) as u64))
        .sum();
    let bar = ProgressBar::with_draw_target(Some(values.max(1)), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {percent}% of the work at most [{elapsed_precise}, at most {eta} left] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// A sweep's configuration as its runs end: its strategy and the varying parameters it
/// has, then its median.
fn config_line(done: &ipcmap::engine::Finished<'_>, axes: &[Axis]) -> String {
    let s = &done.config.settings;
    let mut what = vec![done.label.clone()];
    if axes.contains(&Axis::Function) {
        what.push(format!("fn {}", s.function));
    }
    if axes.contains(&Axis::N) {
        what.push(format!("n {}", ipcmap::report::group_digits(s.n as u64)));
    }
    if axes.contains(&Axis::Workers) {
        what.push(format!("{} workers", s.workers));
    }
    if axes.contains(&Axis::Work) {
        what.push(format!("work {}", s.work));
    }
    format!(
        "{}: {} ms (median of {} runs)",
        what.join(", "),
        ipcmap::report::fmt_ms(done.wall_ms),
        done.runs
    )
}

/// A configuration's weight on the progress bar: its values times its work.
fn work_weight(c: &RunConfig) -> u64 {
    (c.settings.n as u64).saturating_mul(u64::from(c.settings.work.max(1)))
}

fn execute(mut plan: Plan) -> anyhow::Result<()> {
    let bar = progress_bar(&plan);
    let weight = work_weight;
    let mut last = 0;
    // A sweep's table piped (no bar to draw on a terminal) opens with each configuration's
    // line as its runs end, as hyperfine prints each result: a long sweep shows its figures
    // while it runs. stderr stays for warnings and the one error line; JSON and CSV stay pure.
    let tell =
        plan.axes.clone().filter(|_| plan.format.0 == "table" && !std::io::stdout().is_terminal());
    let total_cells: usize = plan.configs.iter().map(|c| c.modes.len()).sum();
    let mut finished = 0;
    let mut reports = Session::new().run_all_telling(
        &plan.configs,
        |config, mode| {
            bar.set_message(format!(
                "{mode} (n={}, {} workers)",
                config.settings.n, config.settings.workers
            ));
            bar.inc(last);
            last = weight(config);
        },
        |done| {
            let Some(axes) = &tell else {
                return;
            };
            finished += 1;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{finished}/{total_cells} {}", config_line(&done, axes));
            let _ = stdout.flush();
        },
    )?;
    bar.finish_and_clear();
    let pays = match plan.predict.0 {
        true => crate::predict::check(&mut reports, &plan.configs, plan.predict.1)
            .map_err(anyhow::Error::msg)?,
        false => None,
    };

    plan.files.write(&reports, plan.axes.as_deref(), pays.as_deref(), plan.configs.first())?;
    // A stop asked for while the outputs were written: no report passes for a complete one.
    if ipcmap::interrupt::requested().is_some() {
        return Err(ipcmap::interrupt::interrupted().into());
    }
    let mut stdout = std::io::stdout().lock();
    let written = plan
        .format
        .exporter()
        .reports(
            Export { reports: &reports, axes: plan.axes.as_deref(), view: plan.view, pays: None },
            &mut stdout,
        )
        .and_then(|()| match plan.explain {
            true => {
                let text = ipcmap::report::explain(&reports);
                let width = match plan.format.0.as_str() {
                    "table" => ipcmap::report::terminal_width(),
                    _ => None,
                };
                write!(stdout, "{}", ipcmap::report::wrap(&text, width))
            }
            false => Ok(()),
        })
        .and_then(|()| stdout.flush());
    written.map_err(|e| stdout_error("the report", e))?;
    warn(&reports, ipcmap::report::Paint(plan.warn_color));
    Ok(())
}

/// After the report, like hyperfine: each warning once, one line each, never a change of
/// exit status.
fn warn(reports: &[ipcmap::report::Report], paint: ipcmap::report::Paint) {
    let mut warned = Vec::new();
    for w in reports.iter().flat_map(|r| &r.warnings) {
        if !warned.contains(&w) {
            let line = format!("warning: {w}");
            let line = match std::io::stderr().is_terminal() {
                true => ipcmap::report::wrap(&line, ipcmap::report::terminal_width()),
                false => line,
            };
            let line = line.lines().map(|l| paint.warning(l)).collect::<Vec<_>>().join("\n");
            let _ = writeln!(
                std::io::stderr(),
                "{}",
                ipcmap::report::printable_keeping_colour(&line, paint.0)
            );
            warned.push(w);
        }
    }
}

fn probe(args: &ProbeArgs) -> u8 {
    if !args.function.is_empty() {
        let functions: Vec<_> = args.function.iter().flat_map(|f| f.0.iter().copied()).collect();
        let values = match args.values[..] {
            [] => ipcmap::probe::FUNCTION_VALUES,
            [v] if v > 0 && v <= ipcmap::probe::MAX_CODEC_VALUES => v,
            _ => {
                return usage_error(&format!(
                    "--values with --fn is one count between 1 and {}",
                    ipcmap::probe::MAX_CODEC_VALUES
                ))
            }
        };
        let need = values as u64 * 16;
        if let Some(left) = ipcmap::config::available_memory_bytes().filter(|&a| need > a) {
            return usage_error(&format!(
                "--values {values} needs {} MiB for input and output, but only {} MiB is available",
                need >> 20,
                left >> 20
            ));
        }
        let p = ipcmap::probe::functions(&functions, values, 7);
        let result =
            to_stdout("the function probe", |out| args.format.exporter().functions(&p, out));
        return finish(result);
    }
    if !args.values.is_empty() && !args.codecs {
        return usage_error("--values goes with --codecs or --fn");
    }
    if args.codecs {
        let sizes = match args.values.is_empty() {
            true => ipcmap::probe::CODEC_SIZES.to_vec(),
            false => args.values.clone(),
        };
        if let Some(bad) = sizes.iter().find(|&&v| v == 0 || v > ipcmap::probe::MAX_CODEC_VALUES) {
            return usage_error(&format!(
                "--values {bad}: each size must be between 1 and {}",
                ipcmap::probe::MAX_CODEC_VALUES
            ));
        }
        let result = ipcmap::probe::codecs(&sizes).map_err(anyhow::Error::from).and_then(|p| {
            to_stdout("the codec probe", |out| args.format.exporter().codecs(&p, out))
        });
        return finish(result);
    }
    let workers = args.workers.unwrap_or_else(ipcmap::config::available_cpus);
    if workers == 0 || workers > ipcmap::config::MAX_WORKERS {
        return usage_error(&format!(
            "--workers must be between 1 and {}",
            ipcmap::config::MAX_WORKERS
        ));
    }
    if args.bytes == 0 || args.bytes > ipcmap::probe::MAX_MESSAGE_BYTES {
        return usage_error(&format!(
            "--bytes must be between 1 and {} (1 GiB)",
            ipcmap::probe::MAX_MESSAGE_BYTES
        ));
    }
    let sizes: Vec<usize> = match args.sizes[..] {
        [] => ipcmap::probe::SIZES.to_vec(),
        [0] => Vec::new(),
        _ => args.sizes.clone(),
    };
    let bad = sizes.iter().find(|&&b| b == 0 || b > ipcmap::probe::MAX_SIZE);
    if bad.is_some() || sizes.len() > ipcmap::probe::MAX_SIZES {
        return usage_error(&format!(
            "--sizes: at most {} sizes, each between 1 and {} bytes (64 MiB), or 0 alone for none",
            ipcmap::probe::MAX_SIZES,
            ipcmap::probe::MAX_SIZE
        ));
    }
    let transport = match args.transport.transport() {
        Ok(t) => t,
        Err(e) => return usage_error(&e.to_string()),
    };
    let spawns = args.transport.spawns();
    let files = match spawns {
        true => ipcmap::config::check_open_files(workers, transport.files_needed(workers)),
        false => Ok(()),
    };
    if let Err(e) = files {
        return usage_error(&e.to_string());
    }
    let worker_bin = match spawns {
        true => match ipcmap::transport::spawner::locate_worker(args.worker_bin.as_deref()) {
            Ok(path) => path,
            Err(e) => return usage_error(&format!("--worker-bin: {e}")),
        },
        false => std::path::PathBuf::from("launched rank"),
    };
    let timeout = ipcmap::transport::spawner::DEFAULT_HANDSHAKE_TIMEOUT;
    let result = ipcmap::probe::run(transport, &worker_bin, workers, args.bytes, &sizes, timeout)
        .map_err(anyhow::Error::from)
        .and_then(|p| to_stdout("the probe", |out| args.format.exporter().probe(&p, out)));
    finish(result)
}

/// Writes `what` to stdout with `write`, flushed; a failure names it.
fn to_stdout(
    what: &str,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    write(&mut stdout).and_then(|()| stdout.flush()).map_err(|e| stdout_error(what, e))
}

/// Maps the outcome to an exit status, with the error on one line.
/// Whoever read stdout is gone (`| head`): nothing is wrong with the run, so it ends quietly
/// with status 0, as hyperfine and the shell's own tools do.
#[derive(Debug)]
struct ReaderGone;

impl std::fmt::Display for ReaderGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for ReaderGone {}

/// A failed write of `what` to stdout: a closed pipe is [`ReaderGone`], anything else names
/// what could not be written.
fn stdout_error(what: &str, e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => anyhow::Error::new(ReaderGone),
        _ => anyhow::anyhow!("writing {what} to stdout: {e}"),
    }
}

fn finish(result: anyhow::Result<()>) -> u8 {
    let Err(e) = result else {
        return 0;
    };
    if e.is::<ReaderGone>() {
        return 0;
    }
    // Library errors already name their cause: one line, no chain.
    say(&format!("error: {e}"));
    let signal = e.downcast_ref::<RunError>().and_then(RunError::signal);
    match signal {
        Some(signal) => 128u8.saturating_add(signal as u8),
        None => 1,
    }
}

/// One line on stderr; a closed or full stderr is not worth a panic.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{}", ipcmap::report::printable(line));
}

/// clap's multi-line error as one line: "error: ... [possible values: ...]".
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("For more information"))
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}

pub fn usage_error<T: From<u8>>(message: &str) -> T {
    say(&format!("error: {message}"));
    T::from(2)
}

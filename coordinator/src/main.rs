//! The ipcmap coordinator: parse the command line, validate it, run, print the report.
//! Exit status: 0 ok, 1 runtime failure (including a result that differs from sequential),
//! 2 bad usage, 130 / 143 interrupted by SIGINT / SIGTERM. Every error is one line on stderr.

mod cli;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, Format, ProbeArgs, SweepArgs};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ipcmap::config::RunConfig;
use ipcmap::engine::Session;
use ipcmap::error::RunError;
use ipcmap::report::{
    plot_phases, plot_sweep, render_sweep_summary, render_table, write_csv, write_json,
};
use ipcmap::sweep::Axis;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&one_line(&e.render().to_string())),
    };
    if let Some(Command::Probe(args)) = &cli.command {
        return probe(args);
    }
    let plan = match plan(&cli) {
        Ok(plan) => plan,
        Err(message) => return usage_error(&message),
    };
    if let Err(e) = ipcmap::interrupt::install() {
        eprintln!("error: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    match execute(&plan) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Library errors already name their cause: one line, no chain.
            eprintln!("error: {e}");
            match e.downcast_ref::<RunError>() {
                Some(RunError::Interrupted { signal }) => {
                    ExitCode::from(128u8.saturating_add(*signal as u8))
                }
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Everything checked and resolved before the first worker starts.
struct Plan<'a> {
    configs: Vec<RunConfig>,
    /// Axes that vary (a sweep); `None` for a plain run.
    axes: Option<Vec<Axis>>,
    format: Format,
    plot: Option<&'a Path>,
    csv: Option<&'a Path>,
    json: Option<&'a Path>,
}

fn plan(cli: &Cli) -> Result<Plan<'_>, String> {
    match &cli.command {
        None => {
            let config = cli
                .run
                .to_request()?
                .validate()
                .map_err(|e| e.to_string())?;
            check_output(cli.plot.as_deref(), "--plot")?;
            Ok(Plan {
                configs: vec![config],
                axes: None,
                format: cli.format,
                plot: cli.plot.as_deref(),
                csv: None,
                json: None,
            })
        }
        Some(Command::Sweep(args)) => plan_sweep(args),
        Some(Command::Probe(_)) => Err("probe is not a run".into()),
    }
}

fn plan_sweep(args: &SweepArgs) -> Result<Plan<'_>, String> {
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
    check_output(args.plot.as_deref(), "--plot")?;
    check_output(args.csv.as_deref(), "--csv")?;
    check_output(args.json.as_deref(), "--json")?;
    Ok(Plan {
        configs,
        axes: Some(axes),
        format: args.format,
        plot: args.plot.as_deref(),
        csv: args.csv.as_deref(),
        json: args.json.as_deref(),
    })
}

/// Refuses an output file whose folder does not exist, before hours of work are spent.
fn check_output(path: Option<&Path>, flag: &str) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(format!(
            "{flag} {}: folder {} does not exist",
            path.display(),
            parent.display()
        ));
    }
    Ok(())
}

fn execute(plan: &Plan<'_>) -> anyhow::Result<()> {
    // An upper bound: auto plans may stop before their maximum.
    let total: usize = plan
        .configs
        .iter()
        .map(|c| c.modes.len() * (c.warmup + c.runs.max()))
        .sum();
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {pos}/{len} runs at most [{elapsed_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut session = Session::new();
    let reports = session.run_all(&plan.configs, |config, mode| {
        bar.set_message(format!(
            "{mode} (n={}, {} workers)",
            config.n, config.workers
        ));
        bar.inc(1);
    })?;
    bar.finish_and_clear();

    if let Some(path) = plan.csv {
        let mut file =
            std::fs::File::create(path).with_context(|| format!("--csv {}", path.display()))?;
        write_csv(&reports, &mut file).with_context(|| format!("--csv {}", path.display()))?;
    }
    if let Some(path) = plan.json {
        let mut file =
            std::fs::File::create(path).with_context(|| format!("--json {}", path.display()))?;
        write_json(&reports, &mut file).with_context(|| format!("--json {}", path.display()))?;
    }
    if let Some(path) = plan.plot {
        match &plan.axes {
            Some(axes) => plot_sweep(&reports, axes, path)?,
            None => plot_phases(&reports, path)?,
        }
    }
    let mut stdout = std::io::stdout().lock();
    match plan.format {
        Format::Table => {
            write!(stdout, "{}", render_table(&reports))?;
            if let Some(axes) = &plan.axes {
                write!(stdout, "{}", render_sweep_summary(&reports, axes))?;
            }
        }
        Format::Json => write_json(&reports, &mut stdout)?,
        Format::Csv => write_csv(&reports, &mut stdout)?,
    }
    stdout.flush()?;
    // After the report, like hyperfine: one line each, never a change of exit status.
    let mut warned = Vec::new();
    for w in reports.iter().flat_map(|r| &r.warnings) {
        if !warned.contains(&w) {
            eprintln!("warning: {w}");
            warned.push(w);
        }
    }
    Ok(())
}

fn probe(args: &ProbeArgs) -> ExitCode {
    let workers = args.workers.unwrap_or_else(ipcmap::config::available_cpus);
    if workers == 0 || workers > ipcmap::config::MAX_WORKERS {
        return usage_error(&format!(
            "--workers must be between 1 and {}",
            ipcmap::config::MAX_WORKERS
        ));
    }
    if args.bytes == 0 {
        return usage_error("--bytes must be at least 1");
    }
    let worker_bin = match ipcmap::spawner::locate_worker(args.worker_bin.as_deref()) {
        Ok(path) => path,
        Err(e) => return usage_error(&format!("--worker-bin: {e}")),
    };
    let timeout = ipcmap::spawner::DEFAULT_HANDSHAKE_TIMEOUT;
    match ipcmap::probe::run(&worker_bin, workers, args.bytes, timeout) {
        Ok(p) => {
            match args.format {
                Format::Json | Format::Csv => println!("{}", serde_json::to_string(&p).unwrap_or_default()),
                Format::Table => println!(
                    "spawn-and-hello of {} workers: {:.2} ms\necho of {} x {} bytes (2 in flight): {:.2} GB/s both ways in send time ({:.2} GB/s of wall time)\necho of {} x 8 bytes (2 in flight): {:.2} µs per one-way message",
                    p.workers, p.spawn_hello_ms, p.echo_messages, p.echo_message_bytes, p.echo_gbps, p.echo_wall_gbps, p.echo8_messages, p.echo8_us_per_message
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
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

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

//! The ipcmap coordinator: parse the command line, validate it, run, print the report.
//! Exit status: 0 ok, 1 runtime failure (including a result that differs from sequential),
//! 2 bad usage, 130 / 143 interrupted by SIGINT / SIGTERM. Every error is one line on stderr.

mod cli;

use clap::Parser;
use cli::{Cli, Format};
use ipcmap::error::RunError;
use ipcmap::report::{render_table, write_csv, write_json};
use std::io::{IsTerminal, Write};
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
    let config = match cli
        .run
        .to_request()
        .and_then(|r| r.validate().map_err(|e| e.to_string()))
    {
        Ok(config) => config,
        Err(message) => return usage_error(&message),
    };
    if let Err(e) = ipcmap::interrupt::install() {
        eprintln!("error: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    match run(&cli, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(RunError::Interrupted { signal }) = e.downcast_ref::<RunError>() {
                eprintln!("error: {e}");
                return ExitCode::from(128u8.saturating_add(*signal as u8));
            }
            // Library errors already name their cause: print one line, no chain.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, config: &ipcmap::config::RunConfig) -> anyhow::Result<()> {
    let show_progress = std::io::stderr().is_terminal();
    let reports = ipcmap::engine::run(config, |mode, i, total| {
        if show_progress {
            eprint!("\r\x1b[2Krunning {mode} ({}/{total})", i + 1);
        }
    });
    if show_progress {
        eprint!("\r\x1b[2K");
    }
    let reports = reports?;
    let mut stdout = std::io::stdout().lock();
    match cli.format {
        Format::Table => write!(stdout, "{}", render_table(&reports))?,
        Format::Json => write_json(&reports, &mut stdout)?,
        Format::Csv => write_csv(&reports, &mut stdout)?,
    }
    stdout.flush()?;
    Ok(())
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

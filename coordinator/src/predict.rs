//! `coordinator predict [run flags]`: every strategy of the run the flags describe, predicted
//! from this machine's calibration without starting a worker (the calibration itself starts
//! echo workers the first time). Each figure is marked as predicted and carries its interval.

use crate::app::{say, usage_error};
use crate::cli::Cli;
use ipcmap::config::RunConfig;
use ipcmap::costs::{Calibration, Figure, Link};
use ipcmap::model::{self, PaysFrom};
use ipcmap::report::{fmt_ms, group_digits};
use ipcmap::settings::TransportKind;
use ipcmap::strategy::Mode;
use serde_json::json;
use std::io::Write;

/// Runs `predict`; the exit status.
pub fn run(cli: &Cli) -> u8 {
    match predict(cli) {
        Ok(()) => 0,
        Err(code) => code,
    }
}

/// `predict`, its failures already said (the exit status in `Err`).
fn predict(cli: &Cli) -> Result<(), u8> {
    let cfg = cli
        .run
        .to_request()
        .and_then(|r| r.validate().map_err(|e| e.to_string()))
        .map_err(|m| usage_error::<u8>(&m))?;
    let link = link(cli, &cfg).map_err(|m| usage_error::<u8>(&m))?;
    let (cal, cached, measured_cores) = machine(cli, &cfg, link)?;
    let mut out = std::io::stdout().lock();
    let json = cli.format.0 == "json";
    let path = model::cache_path().map_or("(not kept)".into(), |p| p.display().to_string());
    if !json {
        let _ = writeln!(out, "{}", header(cli, &cfg, cached, &path, measured_cores));
    }
    if let Some(file) = cli.plot.as_deref() {
        plot(&cfg, &cal, file).map_err(|e| {
            say(&format!("error: {e}"));
            1
        })?;
    }
    let sequential = model::predict(&cfg, Mode::SEQUENTIAL, &cal);
    for &mode in &cfg.modes {
        let Some(p) = model::predict(&cfg, mode, &cal) else {
            let _ = writeln!(out, "{mode}: no model");
            continue;
        };
        let pays = model::pays_from_work(&cfg, mode, &cal);
        let _ = match json {
            true => writeln!(out, "{}", json_row(cli, &cfg, mode, &p, pays, (&path, cached))),
            false => writeln!(out, "{}", words(mode, &p, sequential.as_ref(), pays)),
        };
    }
    Ok(())
}

/// The link `--link-gbps` and `--link-us` describe, checked against the transport: only one
/// whose workers are launched on other hosts (mpi) takes one, and it must.
fn link(cli: &Cli, cfg: &RunConfig) -> Result<Option<Link>, String> {
    let transport = cfg.settings.transport;
    let link = match (cli.link_gbps, cli.link_us) {
        (Some(gbps), Some(us)) => {
            if !(gbps.is_finite() && gbps > 0.0 && gbps <= 1e4) {
                return Err(format!("--link-gbps {gbps}: above 0 and at most 10000"));
            }
            if !(us.is_finite() && (0.0..=1e7).contains(&us)) {
                return Err(format!("--link-us {us}: from 0 to 10000000"));
            }
            let Some(base) = transport.costed_as() else {
                return Err(format!(
                    "--link-gbps: --transport {} has no transport here to cost its ends with",
                    transport.name()
                ));
            };
            Some(Link { bits_per_s: gbps * 1e9, one_way_ns: us * 1e3, base: base.name().into() })
        }
        _ => None,
    };
    match (transport.spawns(), &link) {
        (true, Some(_)) => Err("--link-gbps and --link-us go with --transport mpi: ranks on \
                                hosts joined by that link"
            .into()),
        (false, None) => Err("predict --transport mpi needs the link between the hosts: \
                              --link-gbps G --link-us D (extrapolated from this machine's TCP \
                              costs); a run under mpirun measures it"
            .into()),
        _ => Ok(link),
    }
}

/// This machine's calibration (cached or measured now) with what the user gave in place of
/// measurements: their function's cost (`--fn-ns`), more cores (`--cores`), a link between
/// hosts. Also whether it was cached, and the cores this machine really has.
fn machine(cli: &Cli, cfg: &RunConfig, link: Option<Link>) -> Result<(Calibration, bool, f64), u8> {
    // Across a link each rank's end is costed as its base transport on this machine.
    let measured = match &link {
        Some(l) => TransportKind::named(&l.base).unwrap_or(cfg.settings.transport),
        None => cfg.settings.transport,
    };
    // The calibration measures the transport with the worker, even for strategies without
    // processes (sequential, threads), whose configuration needs none.
    let located = || ipcmap::transport::spawner::locate_worker(None).ok();
    let Some(bin) = cfg.settings.worker_bin.clone().or_else(located) else {
        return Err(usage_error("no worker executable to calibrate the transport with"));
    };
    let (mut cal, cached) =
        model::calibration(&bin, &[measured], cli.recalibrate).map_err(|e| {
            say(&format!("error: calibrating this machine: {e}"));
            1
        })?;
    model::measure_functions(&mut cal, &[cfg.settings.function]);
    let given = |v: f64| Figure { median: v, low: v, high: v };
    if let Some(ns) = cli.fn_ns {
        if !(ns.is_finite() && ns > 0.0 && ns <= 1e9) {
            return Err(usage_error(&format!(
                "--fn-ns {ns}: give the function's ns a value, above 0 and at most 1e9"
            )));
        }
        let function = cfg.settings.function;
        cal.kernel_ns.retain(|(f, _)| *f != function);
        cal.kernel_ns.push((function, given(ns)));
    }
    cal.link = link;
    let measured_cores = cal.compute_cores.median;
    if let Some(cores) = cli.cores {
        if cores == 0 || cores > 4096 {
            return Err(usage_error("--cores must be between 1 and 4096"));
        }
        cal.compute_cores = given(cores as f64);
    }
    Ok((cal, cached, measured_cores))
}

/// What is predicted and from what, every given or extrapolated figure named as such.
fn header(cli: &Cli, cfg: &RunConfig, cached: bool, path: &str, measured_cores: f64) -> String {
    let s = &cfg.settings;
    let source = if cached { "cached" } else { "measured now" };
    let yours = match cli.fn_ns {
        Some(ns) => format!(" The function's cost is yours: {ns} ns a value (--fn-ns)."),
        None => String::new(),
    };
    let cores = match cli.cores {
        Some(n) => format!(
            "\nExtrapolated, not measured: as if {n} cores computed at once (this machine has \
             {measured_cores:.1} that do); its per-core costs, memory and channels as measured \
             here."
        ),
        None => String::new(),
    };
    let across = match (cli.link_gbps, cli.link_us) {
        (Some(g), Some(us)) => format!(
            "\nExtrapolated, not measured: ranks on hosts joined by a {g} Gb/s link with {us} µs \
             one way, rank 0's link carrying every byte; each rank's costs as TCP over this \
             machine's loopback."
        ),
        _ => String::new(),
    };
    let function = match cli.fn_ns {
        Some(ns) => format!("your function ({ns} ns a value)"),
        None => s.function.to_string(),
    };
    format!(
        "ipcmap predict: {function} over {} f64, work {}, {} worker(s) over {} (calibration \
         {source}: {path})\nPredicted, not measured: each wall time with its interval from the \
         calibration's spread.{yours}{cores}{across}\n",
        group_digits(s.n as u64),
        s.work,
        s.workers,
        s.transport.name()
    )
}

/// `--plot FILE.svg`: each strategy's predicted speedup over `--work` 1 to 4096.
fn plot(cfg: &RunConfig, cal: &Calibration, file: &std::path::Path) -> Result<(), String> {
    let s = &cfg.settings;
    let works: Vec<f64> = (0..13).map(|k| f64::from(1u32 << k)).collect();
    let series: Vec<(String, Vec<(f64, f64)>)> = cfg
        .modes
        .iter()
        .filter(|&&m| m != Mode::SEQUENTIAL)
        .map(|&m| (m.name().to_string(), model::speedup_curve(cfg, m, cal, &works)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let title = format!(
        "when it pays, predicted: {} over {} f64, {} workers (circles: break-even)",
        s.function,
        group_digits(s.n as u64),
        s.workers
    );
    let mut out = crate::output::Output::open("--plot", file)?;
    let svg = ipcmap::report::plot_pays(&series, &title).map_err(|e| e.to_string())?;
    out.write_with(|w| w.write_all(svg.as_bytes())).map_err(|e| e.to_string())
}

/// One strategy's prediction as a JSON object.
fn json_row(
    cli: &Cli,
    cfg: &RunConfig,
    mode: Mode,
    p: &model::Predicted,
    pays: Option<PaysFrom>,
    (path, cached): (&str, bool),
) -> serde_json::Value {
    let s = &cfg.settings;
    let phases: serde_json::Map<String, serde_json::Value> =
        p.mid.phases_ms.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let (at, low, high, note) = match pays {
        Some(PaysFrom::Already) => (Some(1.0), Some(1.0), Some(1.0), None),
        Some(PaysFrom::Work { at, low, high }) => (Some(at), Some(low), Some(high), None),
        Some(PaysFrom::Never(why)) => (None, None, None, Some(why)),
        None => (None, None, None, None),
    };
    json!({
        "mode": mode.name(), "n": s.n, "workers": s.workers, "work": s.work,
        "function": s.function, "codec": s.codec.name(), "transport": s.transport.name(),
        "predicted_wall_ms": p.mid.wall_ms, "predicted_wall_ms_low": p.low_ms,
        "predicted_wall_ms_high": p.high_ms, "predicted_phases_ms": phases,
        "pays_from_work": at, "pays_from_work_low": low, "pays_from_work_high": high,
        "pays_note": note, "calibration": path, "calibration_cached": cached,
        "fn_ns_given": cli.fn_ns, "extrapolated_cores": cli.cores,
        "extrapolated_link_gbps": cli.link_gbps, "extrapolated_link_us": cli.link_us,
    })
}

/// One strategy's prediction in words: its time and interval, against sequential, from which
/// `--work` it pays, and its largest stage.
fn words(
    mode: Mode,
    p: &model::Predicted,
    sequential: Option<&model::Predicted>,
    pays: Option<PaysFrom>,
) -> String {
    let versus = match (sequential, mode == Mode::SEQUENTIAL) {
        (_, true) => "the baseline".to_string(),
        (Some(q), false) => {
            let r = q.mid.wall_ms / p.mid.wall_ms.max(1e-9);
            match r >= 1.0 {
                true => format!("{r:.2}x faster than sequential"),
                false => format!("{:.2}x slower than sequential", 1.0 / r),
            }
        }
        (None, false) => String::new(),
    };
    let pays = match pays {
        _ if mode == Mode::SEQUENTIAL => String::new(),
        Some(PaysFrom::Already) => "; pays already at --work 1".into(),
        Some(PaysFrom::Work { at, low, high }) => {
            format!("; pays from --work {at:.1} (interval {low:.1}-{high:.1})")
        }
        Some(PaysFrom::Never(why)) => format!("; never pays: {why}"),
        None => String::new(),
    };
    let mut line = format!(
        "{mode}: predicted {} ms (interval {}-{} ms), {versus}{pays}",
        fmt_ms(p.mid.wall_ms),
        fmt_ms(p.low_ms),
        fmt_ms(p.high_ms)
    );
    if let Some((name, ms)) = p.mid.phases_ms.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        line += &format!("\n  largest stage: {name}, {} ms", fmt_ms(*ms));
    }
    line
}

/// `--predict`: puts each report's prediction (this machine's calibration, made for its
/// configuration as it was set before the run) beside its measurement.
pub fn check(
    reports: &mut [ipcmap::report::Report],
    configs: &[ipcmap::config::RunConfig],
    recalibrate: bool,
) -> Result<Option<String>, String> {
    let mut transports: Vec<ipcmap::settings::TransportKind> = Vec::new();
    for c in configs.iter().filter(|c| c.settings.transport.spawns()) {
        if !transports.contains(&c.settings.transport) {
            transports.push(c.settings.transport);
        }
    }
    // A run of threads and sequential alone resolved no worker: the calibration still wants
    // one (its transports' floors), found where a run would look.
    let bin = configs.iter().find_map(|c| c.settings.worker_bin.clone()).or_else(|| {
        let asked = configs.iter().find_map(|c| c.settings.worker_bin.as_deref());
        ipcmap::transport::spawner::locate_worker(asked).ok()
    });
    let (Some(bin), false) = (bin, transports.is_empty()) else {
        return Ok(None);
    };
    let (mut cal, _) = model::calibration(&bin, &transports, recalibrate)
        .map_err(|e| format!("--predict: calibrating this machine: {e}"))?;
    let functions: Vec<_> = configs.iter().map(|c| c.settings.function).collect();
    model::measure_functions(&mut cal, &functions);
    for r in reports.iter_mut() {
        let found = configs.iter().find_map(|c| {
            let mode = *c.modes.iter().find(|m| m.name() == r.config.mode)?;
            let s = &c.settings;
            let same = s.n == r.config.n
                && s.work == r.config.work
                && s.function == r.config.function
                && s.transport.name() == r.job.transport
                && (mode == ipcmap::strategy::Mode::SEQUENTIAL || s.workers == r.config.workers)
                && r.config.codec.is_none_or(|k| k == s.codec)
                && c.splits_for(mode) == r.config.splits
                && c.chunksize_for(mode) == r.config.chunksize;
            same.then_some((c, mode))
        });
        let Some((c, mode)) = found else { continue };
        if let Some(p) = model::predict(c, mode, &cal) {
            r.prediction = ipcmap::report::PredictionCheck {
                predicted_wall_ms: Some(p.mid.wall_ms),
                predicted_wall_ms_low: Some(p.low_ms),
                predicted_wall_ms_high: Some(p.high_ms),
                prediction_error: Some(r.wall_ms / p.mid.wall_ms.max(1e-9) - 1.0),
                ..Default::default()
            };
            match model::pays_from_work(c, mode, &cal) {
                _ if mode == ipcmap::strategy::Mode::SEQUENTIAL => {}
                Some(PaysFrom::Already) => r.prediction.predicted_pays_from_work = Some(1.0),
                Some(PaysFrom::Work { at, .. }) => r.prediction.predicted_pays_from_work = Some(at),
                Some(PaysFrom::Never(why)) => r.prediction.predicted_never_pays = Some(why),
                None => {}
            }
        }
    }
    Ok(pays_chart(reports, configs, &cal))
}

/// The when-it-pays chart of a run (not a sweep of several workloads): each process or thread
/// strategy's predicted speedup line over `--work` 1 to 4096, and where each ran, its measured
/// speedup and interval at the math a value it ran with.
fn pays_chart(
    reports: &[ipcmap::report::Report],
    configs: &[ipcmap::config::RunConfig],
    cal: &ipcmap::costs::Calibration,
) -> Option<String> {
    let [cfg] = configs else {
        return None;
    };
    let works: Vec<f64> = (0..13).map(|k| f64::from(1u32 << k)).collect();
    let modes = cfg.modes.iter().filter(|&&m| m != ipcmap::strategy::Mode::SEQUENTIAL);
    let series: Vec<(String, Vec<(f64, f64)>)> = modes
        .map(|&m| (m.name().to_string(), model::speedup_curve(cfg, m, cal, &works)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let per_value = cal.kernel(cfg.settings.function).median;
    let measured: Vec<ipcmap::report::MeasuredPoint> = reports
        .iter()
        .filter_map(|r| {
            let (speedup, low, high) = (r.speedup?, r.spread.speedup_low?, r.spread.speedup_high?);
            Some((r.config.mode.clone(), per_value * f64::from(r.config.work), speedup, low, high))
        })
        .collect();
    let s = &cfg.settings;
    let title = format!(
        "when it pays: {} over {} f64, {} workers (circles: predicted break-even)",
        s.function,
        group_digits(s.n as u64),
        s.workers
    );
    ipcmap::report::plot_pays_measured(&series, &measured, &title).ok()
}

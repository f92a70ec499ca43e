//! When does it pay? A model of this machine, calibrated in seconds and cached, that predicts
//! every strategy before it runs and is checked against what runs then measure.
//!
//! [`calibrate`] measures the floors ([`crate::costs::Calibration`]): the generator and each
//! kernel a value, first touch of private and shared memory, a copy, the cores that really
//! compute at once, every codec's encode and decode, and each transport's spawn, message and
//! byte costs. [`calibration`] keeps it in the user's cache directory, one file per host, CPU,
//! kernel and build, with a schema version; `--recalibrate` measures it anew. Each strategy
//! states its cost from these in its own file ([`crate::strategy::Strategy::predict`]);
//! [`predict`] puts a run's settings to it, with an interval from the calibration's spread,
//! and [`pays_from_work`] solves for the `--work` from which a strategy beats sequential.

use crate::config::RunConfig;
use crate::costs::{Calibration, CodecCost, Figure, Load, Pick, Prediction, CALIBRATION_SCHEMA};
use crate::error::RunError;
use crate::kernel::Function;
use crate::settings::TransportKind;
use crate::strategy::Mode;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// The cost model's tasks in flight are the scheduler's.
const _: () = assert!(crate::costs::TASKS_IN_FLIGHT == crate::scheduler::DEPTH);

/// Samples of each figure.
const SAMPLES: usize = 5;

/// Values a kernel or generator sample covers (one generator block: in cache).
const BLOCK: usize = crate::data::BLOCK;

/// Bytes of fresh memory a first-touch sample faults in.
const TOUCH_BYTES: usize = 64 << 20;

/// Bytes of the big echo a transport's byte cost is measured with.
const ECHO_BYTES: usize = 1 << 20;

/// A prediction with its interval: the medians of every figure, and all the fastest and all
/// the slowest samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Predicted {
    /// From the medians.
    pub mid: Prediction,
    /// Wall time from every figure's fastest sample, ms.
    pub low_ms: f64,
    /// Wall time from every figure's slowest sample, ms.
    pub high_ms: f64,
}

/// From which `--work` a strategy's predicted wall time drops below sequential's.
#[derive(Clone, Debug, PartialEq)]
pub enum PaysFrom {
    /// It already does at `--work 1`.
    Already,
    /// From about this work (and its interval from the calibration's spread).
    Work {
        /// From the medians.
        at: f64,
        /// From the fastest samples.
        low: f64,
        /// From the slowest samples.
        high: f64,
    },
    /// Not at any work up to [`MAX_WORK`]: why.
    Never(String),
}

/// The largest `--work` the break-even is looked for up to.
pub const MAX_WORK: f64 = 65_536.0;

/// The file this machine's calibration is kept in: `$XDG_CACHE_HOME/ipcmap` (else
/// `~/.cache/ipcmap`), named for the machine and the build, so a debug build and a release
/// build keep their own.
pub fn cache_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let key = machine();
    let hash = key
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Some(base.join("ipcmap").join(format!("calibration-{hash:016x}.json")))
}

/// The host, CPU, kernel and build a calibration belongs to.
fn machine() -> String {
    let meta = crate::report::Meta::now();
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    format!("{} | {} | {} | {build} build", meta.host, meta.cpu_model, meta.kernel)
}

/// This machine's calibration: the cached one where it is of this machine, build and schema
/// and holds every transport in `transports`; else measured now (with `worker_bin` for the
/// transports) and cached. `fresh` measures anew whatever is cached.
pub fn calibration(
    worker_bin: &Path,
    transports: &[TransportKind],
    fresh: bool,
) -> Result<(Calibration, bool), RunError> {
    let path = cache_path();
    let cached: Option<Calibration> = match (fresh, &path) {
        (false, Some(p)) => std::fs::read(p).ok().and_then(|b| serde_json::from_slice(&b).ok()),
        _ => None,
    };
    let wanted = |c: &Calibration| {
        c.schema == CALIBRATION_SCHEMA
            && c.machine == machine()
            && transports.iter().all(|t| c.transport(t.name()).is_some())
    };
    if let Some(c) = cached.filter(wanted) {
        return Ok((c, true));
    }
    let c = calibrate(worker_bin, transports)?;
    if let Some(p) = path {
        let written = p.parent().map(std::fs::create_dir_all).transpose().ok().and_then(|_| {
            let tmp = p.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec_pretty(&c).ok()?).ok()?;
            std::fs::rename(&tmp, &p).ok()
        });
        let _ = written; // An unwritable cache costs the next run a calibration, nothing more.
    }
    Ok((c, false))
}

/// `function`'s cost a value on one thread over one block of generated data, `SAMPLES` times.
fn kernel_figure(function: Function) -> Figure {
    let mut input = vec![0.0; BLOCK];
    crate::data::generate_at(7, 0, &mut input);
    let mut output = vec![0.0; BLOCK];
    let samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            crate::kernel::apply(function, &input, &mut output);
            std::hint::black_box(&output);
            t.elapsed().as_nanos() as f64 / BLOCK as f64
        })
        .collect();
    Figure::of(&samples)
}

/// `function`'s cost a value computed one value at a time, as item's workers do, `work`
/// rounds each, over one block, `SAMPLES` times: ns a value.
fn kernel_one_samples(function: Function, work: u32) -> Vec<f64> {
    let mut input = vec![0.0; BLOCK];
    crate::data::generate_at(7, 0, &mut input);
    (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for &x in &input {
                let y = crate::kernel::apply_one_work(function, work, std::hint::black_box(x));
                std::hint::black_box(y);
            }
            t.elapsed().as_nanos() as f64 / BLOCK as f64
        })
        .collect()
}

/// One round on one value, and each further round (what 9 rounds cost over 1, an eighth).
fn kernel_one_figures(function: Function) -> (Figure, Figure) {
    let (one, nine) = (kernel_one_samples(function, 1), kernel_one_samples(function, 9));
    let chain: Vec<f64> = nine.iter().zip(&one).map(|(n, o)| ((n - o) / 8.0).max(0.0)).collect();
    (Figure::of(&one), Figure::of(&chain))
}

/// Adds to `cal` the kernel cost of each of `functions` it lacks (a user's expression: the
/// calibration holds the built-ins), measured now the way the built-ins were.
pub fn measure_functions(cal: &mut Calibration, functions: &[Function]) {
    for &f in functions {
        if !cal.kernel_ns.iter().any(|(known, _)| *known == f) {
            cal.kernel_ns.push((f, kernel_figure(f)));
        }
        if !cal.kernel_one_ns.iter().any(|(known, _)| *known == f) {
            let (one, chain) = kernel_one_figures(f);
            cal.kernel_one_ns.push((f, one));
            cal.kernel_chain_ns.push((f, chain));
        }
    }
}

/// Measures this machine: every figure `SAMPLES` times.
pub fn calibrate(worker_bin: &Path, transports: &[TransportKind]) -> Result<Calibration, RunError> {
    let time_per = |values: usize, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / values as f64
    };
    let mut input = vec![0.0; BLOCK];
    let samples =
        |f: &mut dyn FnMut() -> f64| Figure::of(&(0..SAMPLES).map(|_| f()).collect::<Vec<_>>());
    let generate_ns =
        samples(&mut || time_per(BLOCK, &mut || crate::data::generate_at(7, 0, &mut input)));
    let kernel_ns = Function::ALL.iter().map(|&f| (f, kernel_figure(f))).collect();
    let (mut kernel_one_ns, mut kernel_chain_ns) = (Vec::new(), Vec::new());
    for &f in Function::ALL.iter() {
        let (one, chain) = kernel_one_figures(f);
        kernel_one_ns.push((f, one));
        kernel_chain_ns.push((f, chain));
    }
    // Fresh private memory as a run gets it (zeroed, advised for huge pages where the kernel
    // gives them), each page's first write timed.
    let touch_private_ns = samples(&mut || {
        let values = TOUCH_BYTES / 8;
        let mut fresh = crate::memory::zeroed(values);
        time_per(values, &mut || {
            for page in fresh.chunks_mut(512) {
                page[0] = 1.0;
            }
        })
    });
    let touch_shared_ns = samples(&mut || {
        let values = TOUCH_BYTES / 8;
        match crate::shared::SharedRegion::create("ipcmap-calibrate", values, false) {
            Ok(mut region) => time_per(values, &mut || {
                for page in region.as_f64s_mut().chunks_mut(512) {
                    page[0] = 1.0;
                }
            }),
            Err(_) => f64::NAN,
        }
    });
    // A kept region mapped anew and faulted in for reading, as a new shm worker maps it.
    let values = TOUCH_BYTES / 8;
    let remap_shared_ns = match crate::shared::SharedRegion::create("ipcmap-remap", values, true) {
        Ok(region) => samples(&mut || {
            // SAFETY: the region's own descriptor, open while it lives; only duplicated here.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(region.raw_fd()) };
            let mut copy = fd.try_clone_to_owned().ok();
            time_per(values, &mut || {
                let Some(fd) = copy.take() else {
                    return;
                };
                let fd = std::os::fd::IntoRawFd::into_raw_fd(fd);
                // SAFETY: `fd` is a fresh copy nothing else owns.
                if let Ok(again) = unsafe { crate::shared::SharedRegion::adopt(fd, TOUCH_BYTES) } {
                    again.prefault(0..values, false);
                }
            })
        }),
        Err(_) => Figure::of(&[]),
    };
    let (from, mut to) = (vec![1.0f64; 1 << 20], vec![0.0f64; 1 << 20]);
    let copy_ns = samples(&mut || time_per(1 << 20, &mut || to.copy_from_slice(&from)));
    let compute_cores = samples(&mut compute_cores);
    let codecs = codec_costs()?;
    let mut transport_costs = Vec::new();
    for t in transports {
        let transport = t.transport().map_err(|e| RunError::Channel {
            what: format!("calibrating {}", t.name()),
            message: e.to_string(),
        })?;
        let timeout = Duration::from_secs(30);
        transport_costs
            .push(crate::probe::transport_costs(transport, worker_bin, ECHO_BYTES, 3, timeout)?);
    }
    Ok(Calibration {
        schema: CALIBRATION_SCHEMA,
        machine: machine(),
        taken_at_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        generate_ns,
        kernel_ns,
        kernel_one_ns,
        kernel_chain_ns,
        touch_private_ns,
        touch_shared_ns,
        remap_shared_ns,
        copy_ns,
        compute_cores,
        codecs,
        transports: transport_costs,
        link: None,
    })
}

/// The speedup of a compute-bound loop on every CPU at once against one alone, each copy
/// long enough (about 40 ms) that starting the threads is noise in it.
fn compute_cores() -> f64 {
    let cpus = crate::config::available_cpus();
    let input = vec![0.5; 4096];
    let round = |input: &[f64]| {
        let mut output = vec![0.0; input.len()];
        crate::kernel::apply_work(Function::Exp, 4, input, &mut output);
        std::hint::black_box(&output);
    };
    let t = Instant::now();
    round(&input);
    let rounds = (0.04 / t.elapsed().as_secs_f64().max(1e-7)).clamp(1.0, 1e6) as usize;
    let work = || {
        let t = Instant::now();
        for _ in 0..rounds {
            round(&input);
        }
        t.elapsed().as_secs_f64()
    };
    let one = work();
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cpus {
            s.spawn(work);
        }
    });
    let all = t.elapsed().as_secs_f64();
    (cpus as f64 * one / all.max(1e-9)).clamp(1.0, cpus as f64)
}

/// Every codec's costs from the codec probe (a 64K-value block, and items).
fn codec_costs() -> Result<Vec<CodecCost>, RunError> {
    let probe = crate::probe::codecs(&[BLOCK])?;
    let ns = |gbps: f64| 8.0 / gbps.max(1e-9);
    let fig = |median: f64, fastest_gbps: f64, slowest_gbps: f64| Figure {
        median,
        low: ns(fastest_gbps),
        high: ns(slowest_gbps),
    };
    Ok(crate::codec::CodecKind::all()
        .map(|codec| {
            let row =
                |shape: &str| probe.rows.iter().find(|r| r.codec == codec && r.shape == shape);
            let mut cost = CodecCost { codec: codec.name().to_string(), ..CodecCost::default() };
            if let Some(r) = row("block") {
                cost.encode_ns = fig(r.encode_ns_per_value, r.encode_gbps_max, r.encode_gbps_min);
                cost.decode_ns = fig(r.decode_ns_per_value, r.decode_gbps_max, r.decode_gbps_min);
                cost.bytes_per_value = r.bytes_per_value;
            }
            if let Some(r) = row("items") {
                cost.item_encode_ns =
                    fig(r.encode_ns_per_value, r.encode_gbps_max, r.encode_gbps_min);
                cost.item_decode_ns =
                    fig(r.decode_ns_per_value, r.decode_gbps_max, r.decode_gbps_min);
                cost.item_bytes = r.bytes_per_value;
            }
            cost
        })
        .collect())
}

/// `mode`'s load under `cfg` at `work`, read at `pick`.
fn load<'a>(cfg: &RunConfig, mode: Mode, cal: &'a Calibration, pick: Pick, work: f64) -> Load<'a> {
    let s = &cfg.settings;
    let tasks = cfg.tasks_for(mode);
    Load {
        cal,
        pick,
        n: s.n as f64,
        workers: if mode == Mode::SEQUENTIAL { 1.0 } else { s.workers as f64 },
        function: s.function,
        work,
        codec: s.codec.name().to_string(),
        transport: s.transport.name().to_string(),
        tasks: tasks.len() as f64,
        task_values: tasks.iter().map(crate::partition::Task::len).max().unwrap_or(0) as f64,
        // A measured run finds what the warm-up made, where there is a warm-up.
        kept: crate::costs::Kept {
            buffers: cfg.warmup > 0 && cfg.reuse_buffers,
            input: cfg.warmup > 0 && cfg.keep_input && !s.in_place && mode.buffers(s) > 0,
            workers: cfg.warmup > 0
                && s.pool == crate::settings::WorkerPool::Persistent
                && mode.uses_processes()
                && mode.strategy().keeps_workers(),
        },
    }
}

/// `mode`'s predicted run under `cfg`, with its interval; `None` where it has no model.
pub fn predict(cfg: &RunConfig, mode: Mode, cal: &Calibration) -> Option<Predicted> {
    predict_at(cfg, mode, cal, f64::from(cfg.settings.work.max(1)))
}

fn predict_at(cfg: &RunConfig, mode: Mode, cal: &Calibration, work: f64) -> Option<Predicted> {
    let at = |pick| mode.strategy().predict(&load(cfg, mode, cal, pick, work));
    Some(Predicted {
        mid: at(Pick::Median)?,
        low_ms: at(Pick::Low)?.wall_ms,
        high_ms: at(Pick::High)?.wall_ms,
    })
}

/// `mode`'s predicted speedup over sequential under `cfg` at each `--work` of `works`, against
/// the math a value then costs (ns, the function's calibrated cost x work): the when-it-pays
/// curve.
pub fn speedup_curve(
    cfg: &RunConfig,
    mode: Mode,
    cal: &Calibration,
    works: &[f64],
) -> Vec<(f64, f64)> {
    let per_value = cal.kernel(cfg.settings.function).median;
    works
        .iter()
        .filter_map(|&work| {
            let strategy = predict_at(cfg, mode, cal, work)?.mid.wall_ms;
            let base = predict_at(cfg, Mode::SEQUENTIAL, cal, work)?.mid.wall_ms;
            Some((per_value * work, base / strategy.max(1e-9)))
        })
        .collect()
}

/// From which `--work` `mode` is predicted to beat sequential under `cfg`.
pub fn pays_from_work(cfg: &RunConfig, mode: Mode, cal: &Calibration) -> Option<PaysFrom> {
    let crossing = |pick: Pick| -> Option<Option<f64>> {
        let gap = |work: f64| -> Option<f64> {
            let strategy = mode.strategy().predict(&load(cfg, mode, cal, pick, work))?.wall_ms;
            let base = Mode::SEQUENTIAL
                .strategy()
                .predict(&load(cfg, Mode::SEQUENTIAL, cal, pick, work))?
                .wall_ms;
            Some(strategy - base)
        };
        if gap(1.0)? < 0.0 {
            return Some(Some(1.0));
        }
        // Doubling to the first work where it pays, then bisection in between.
        let mut high = 2.0;
        while gap(high)? >= 0.0 {
            if high >= MAX_WORK {
                return Some(None);
            }
            high *= 2.0;
        }
        let mut low = high / 2.0;
        for _ in 0..40 {
            let mid = (low + high) / 2.0;
            match gap(mid)? < 0.0 {
                true => high = mid,
                false => low = mid,
            }
        }
        Some(Some(high))
    };
    let mid = crossing(Pick::Median)?;
    // Cheap costs (Low) favour whichever side moves less; the interval is the two ends'.
    let (a, b) = (crossing(Pick::Low)?, crossing(Pick::High)?);
    Some(match mid {
        Some(at) if at <= 1.0 => PaysFrom::Already,
        Some(at) => {
            let ends: Vec<f64> = [a, b].into_iter().map(|x| x.unwrap_or(MAX_WORK)).collect();
            PaysFrom::Work { at, low: ends[0].min(ends[1]).min(at), high: ends[0].max(ends[1]).max(at) }
        }
        None => PaysFrom::Never(match load(cfg, mode, cal, Pick::Median, 1.0).parallel() <= 1.0 {
            true => "it computes on no more cores than sequential".into(),
            false => format!("not by --work {MAX_WORK:.0}: what it moves grows with the work too, or its fixed costs dwarf it"),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibration_measures_every_figure_and_a_prediction_follows_the_work() {
        let bin =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/worker");
        if !bin.exists() {
            return eprintln!("skipped: no worker binary built ({})", bin.display());
        }
        let cal = calibrate(&bin, &[TransportKind::default()]).unwrap();
        assert!(cal.generate_ns.median > 0.0 && cal.copy_ns.median > 0.0);
        assert!(cal.kernel(Function::Exp).median > 0.0);
        assert!(cal.compute_cores.median >= 1.0);
        assert_eq!(cal.codecs.len(), crate::codec::CodecKind::all().count());
        let t = &cal.transports[0];
        assert!(t.spawn_ms.median > 0.0 && t.message_us.median > 0.0, "{t:?}");
        let mut request = crate::config::RunRequest {
            modes: Mode::available(TransportKind::default()),
            ..Default::default()
        };
        request.settings.n = 1_000_000;
        request.settings.workers = 2;
        request.settings.worker_bin = Some(bin.clone());
        let cfg = request.validate().unwrap();
        for mode in
            [Mode::SEQUENTIAL, Mode::named("split").unwrap(), Mode::named("threads").unwrap()]
        {
            let p = predict(&cfg, mode, &cal).expect("a model");
            assert!(p.low_ms <= p.mid.wall_ms && p.mid.wall_ms <= p.high_ms, "{mode}: {p:?}");
            let heavier = predict_at(&cfg, mode, &cal, 16.0).unwrap();
            assert!(heavier.mid.wall_ms > p.mid.wall_ms, "{mode}: more work costs more");
        }
        assert!(pays_from_work(&cfg, Mode::SEQUENTIAL, &cal).is_some());
    }
}

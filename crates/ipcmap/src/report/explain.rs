//! `--explain`: the table told in sentences, computed from the reports and never written by
//! hand. For each strategy: where its wall time went, which cost dominates (moving data, memory,
//! spawning, or the math), and the `--work` factor from which it would match the sequential
//! run, estimated from its measured fixed and per-unit costs. Every figure comes from the
//! report (or is derived from it).

use super::table::fmt_ms;
use super::{Millis, Report, Verdict};

/// The explanation of `reports` (of one input; the sequential report, if any, is the baseline).
pub fn explain(reports: &[Report]) -> String {
    let baseline = reports.iter().find(|r| r.is_sequential());
    let mut out = String::from("\nWhat the figures say (every number from the report above):\n\n");
    if let Some(line) = reports.first().and_then(intensity_sentence) {
        out += &format!("- {line}\n");
    }
    for r in reports {
        out += &format!("- {}\n", sentence(r, baseline));
    }
    let held = conclusions(reports);
    if !held.is_empty() {
        out += "\nThe conclusions of the tutorial (\"Parallel NumPy Vector Math with Multiprocessing\"), \
                checked against these runs (\"holds\" and \"does not hold\" only where the runs' \
                spread leaves no doubt):\n\n";
        for line in held {
            out += &format!("- {line}\n");
        }
    }
    out
}

/// Whether the function is memory-bound or compute-bound here, and what that decides.
fn intensity_sentence(r: &Report) -> Option<String> {
    let (fn_ns, copy_ns) = (r.intensity.fn_ns_per_value?, r.intensity.copy_ns_per_value?);
    let head = format!(
        "The function, {}, costs {} ns a value on one core with its data in cache; copying a \
         value through memory (8 bytes read, 8 written) costs {} ns here",
        r.config.function,
        fmt_ms(fn_ns),
        fmt_ms(copy_ns)
    );
    Some(match r.intensity.fn_bound? {
        "memory" => format!(
            "{head}. It is memory-bound: the math costs no more than moving the value once. \
             A strategy that copies each value to a worker and back adds at least that much a \
             value, so it cannot pay on this machine whatever the size; one that shares or owns \
             the data can gain only as far as more cores get more memory bandwidth."
        ),
        _ => format!(
            "{head}. It is compute-bound ({:.1}x the copy): the math outweighs moving the value, \
             so a process strategy can pay once each worker's share of the math outweighs its \
             start-up and what it moves; the heavier the function (or --work), the sooner.",
            fn_ns / copy_ns.max(1e-12)
        ),
    })
}

/// Whether `a` ran faster than `b` beyond doubt: by their speedup intervals against the same
/// sequential runs where both have one, else by their fastest and slowest runs; `None` where
/// the two overlap (or a figure is missing), which no median settles.
fn clearly_faster(a: &Report, b: &Report) -> Option<bool> {
    let interval = |r: &Report| r.spread.speedup_low.zip(r.spread.speedup_high);
    if let (Some((a_low, a_high)), Some((b_low, b_high))) = (interval(a), interval(b)) {
        return match () {
            _ if a_low > b_high => Some(true),
            _ if a_high < b_low => Some(false),
            _ => None,
        };
    }
    let range = |r: &Report| (r.wall_ms_min > 0.0).then_some((r.wall_ms_min, r.wall_ms_max));
    let ((a_min, a_max), (b_min, b_max)) = (range(a)?, range(b)?);
    match () {
        _ if a_max < b_min => Some(true),
        _ if a_min > b_max => Some(false),
        _ => None,
    }
}

/// A strategy's verdict against sequential as a yes or no: slower (true), faster (false), or
/// not clear (`None`: one sample, or an interval that holds 1).
fn slower_than_sequential(r: &Report) -> Option<bool> {
    match r.spread.verdict {
        Some(Verdict::Slower) => Some(true),
        Some(Verdict::Faster) => Some(false),
        _ => None,
    }
}

/// The tutorial's conclusions that these reports can check, each with whether it holds here.
fn conclusions(reports: &[Report]) -> Vec<String> {
    let find = |mode: &str| reports.iter().find(|r| r.config.mode == mode);
    let verdict = |holds: Option<bool>| match holds {
        Some(true) => "holds",
        Some(false) => "does not hold",
        None => "not clear from these runs",
    };
    let mut out = Vec::new();
    if let (Some(seq), Some(item)) = (find("sequential"), find("item")) {
        let p = &item.phases_ms;
        let moving = p.encode + p.transfer + p.decode;
        out.push(format!(
            "\"Sending every value to the workers costs more than the math\": {} ({}: {} ms \
             moving data against {} ms of math in the busiest worker; {} ms against {} ms \
             sequential).",
            verdict(slower_than_sequential(item).map(|slower| slower && moving > p.compute_max)),
            item.config.mode,
            fmt_ms(moving),
            fmt_ms(p.compute_max),
            fmt_ms(item.wall_ms),
            fmt_ms(seq.wall_ms)
        ));
    }
    if let (Some(item), Some(split)) = (find("item"), find("split")) {
        out.push(format!(
            "\"Splitting into sub-vectors is far faster than sending items\": {} (split {} ms, \
             item {} ms).",
            verdict(clearly_faster(split, item)),
            fmt_ms(split.wall_ms),
            fmt_ms(item.wall_ms)
        ));
    }
    if let (Some(seq), Some(split)) = (find("sequential"), find("split")) {
        out.push(format!(
            "\"Even split, processes lose to the plain sequential call for a function as cheap \
             as exp\": {} (split {} ms, sequential {} ms, verdict: {}).",
            verdict(slower_than_sequential(split)),
            fmt_ms(split.wall_ms),
            fmt_ms(seq.wall_ms),
            split.spread.verdict.map_or("one sample, none", Verdict::as_str)
        ));
    }
    let processes = reports
        .iter()
        .filter(|r| !matches!(r.config.mode.as_str(), "sequential" | "threads"))
        .min_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    if let (Some(threads), Some(best)) = (find("threads"), processes) {
        out.push(format!(
            "\"Threads beat processes here, since numpy releases the GIL\": {} (threads {} ms, \
             the fastest process strategy, {}, {} ms).",
            verdict(clearly_faster(threads, best)),
            fmt_ms(threads.wall_ms),
            best.config.mode,
            fmt_ms(best.wall_ms)
        ));
    }
    out
}

/// The costs of one report, ms of time spent (phases overlap across processes).
struct Costs {
    spawn: Millis,
    data: Millis,
    memory: Millis,
    /// The busiest worker's math: what grows with `--work`.
    math: Millis,
}

fn costs(r: &Report, baseline: Option<&Report>) -> Costs {
    let p = &r.phases_ms;
    let data = p.encode + p.transfer + p.decode;
    let Some(b) = baseline else {
        return Costs { spawn: p.spawn, data, memory: 0.0, math: p.compute_max };
    };
    // The same input costs more to generate only where its memory does (shared pages). There
    // the workers fault their output pages in as they compute, too: their compute beyond their
    // share of the sequential math (scaled to this work factor) is memory, which does not grow
    // with --work. Elsewhere the compute is math as measured (item's per-float path is slower).
    let extra_generate = (p.generate - b.phases_ms.generate).max(0.0);
    let share = b.phases_ms.compute_max / f64::from(b.config.work.max(1))
        * f64::from(r.config.work.max(1))
        / r.config.workers.max(1) as f64;
    let math = if extra_generate > 0.1 * b.phases_ms.generate {
        p.compute_max.min(share)
    } else {
        p.compute_max
    };
    Costs { spawn: p.spawn, data, memory: extra_generate + (p.compute_max - math), math }
}

fn sentence(r: &Report, baseline: Option<&Report>) -> String {
    let p = &r.phases_ms;
    if r.is_sequential() {
        return format!(
            "sequential: {} ms, of which {} ms generating the input and {} ms of math: the \
             baseline. {}",
            fmt_ms(r.wall_ms),
            fmt_ms(p.generate),
            fmt_ms(p.compute_max),
            cpu(r)
        );
    }
    let c = costs(r, baseline);
    let versus = match (r.speedup, r.spread.verdict) {
        (Some(s), Some(v)) => format!("{}x sequential ({v})", super::table::ratio(s)),
        (Some(s), None) => format!("{}x sequential", super::table::ratio(s)),
        _ => "no sequential run to compare with".into(),
    };
    let mut text = format!(
        "{} ({} workers): {} ms wall, {versus}. Spawning took {} ms, generating the input {} ms; ",
        r.config.mode,
        r.config.workers,
        fmt_ms(r.wall_ms),
        fmt_ms(c.spawn),
        fmt_ms(p.generate)
    );
    let t = &r.traffic;
    let bytes = (t.payload_bytes_sent + t.payload_bytes_received).max(r.extras.bytes_copied);
    if bytes > 0 {
        text += &format!(
            "moving the data took {} ms of time spent (encode {}, inside sends {}, decode {}) for {:.1} MB",
            fmt_ms(c.data),
            fmt_ms(p.encode),
            fmt_ms(p.transfer),
            fmt_ms(p.decode),
            bytes as f64 / 1e6
        );
        if let Some(gbps) = r.channel_gbps.filter(|g| *g >= 0.01) {
            text += &format!(" ({gbps:.2} GB/s in sends)");
        }
        text += "; ";
    }
    text += &format!("the busiest worker computed {} ms.", fmt_ms(p.compute_max));
    let (what, ms) = largest_cost(r, baseline);
    text += &format!(" Its largest cost: {what}, {} ms. {}", fmt_ms(ms), cpu(r));
    if let Some(b) = baseline {
        text += &format!(" {}", break_even(r, &c, b));
    }
    // The model's answer beside the one from this run's own costs (`--predict`), and where the
    // two disagree.
    let p = &r.prediction;
    match (p.predicted_pays_from_work, &p.predicted_never_pays) {
        (Some(k), _) if k <= 1.0 => {
            text += " The model (calibrated on this machine) has it pay already at --work 1."
        }
        (Some(k), _) => {
            text +=
                &format!(" The model (calibrated on this machine) has it pay from --work {k:.1}.")
        }
        (None, Some(never)) => text += &format!(" The model says it never pays: {never}."),
        _ => {}
    }
    if let (Some(error), Some(low), Some(high)) =
        (p.prediction_error, p.predicted_wall_ms_low, p.predicted_wall_ms_high)
    {
        if r.wall_ms < low || r.wall_ms > high {
            text += &format!(
                " The measurement ({} ms) is outside the model's interval ({}-{} ms): the model is \
                 off by {:+.0}% here.",
                fmt_ms(r.wall_ms),
                fmt_ms(low),
                fmt_ms(high),
                error * 100.0
            );
        }
    }
    text
}

/// A strategy's largest cost, named for what it is, and its ms of time spent: moving the data
/// (encode, sends, decode: where no payload moved, only range or checksum messages, it says
/// so), memory (page faults and contention beyond sequential's share), spawning, or the math.
pub(super) fn largest_cost(r: &Report, baseline: Option<&Report>) -> (String, Millis) {
    let c = costs(r, baseline);
    let t = &r.traffic;
    let moved = (t.payload_bytes_sent + t.payload_bytes_received).max(r.extras.bytes_copied);
    // Under a thousandth of the values' own bytes is headers, ranges or checksums, not data.
    let data = match moved < r.config.n as u64 * 8 / 1000 {
        true => "messages (ranges or checksums only: no data moves)".to_string(),
        false => format!("moving the data ({:.1} MB)", moved as f64 / 1e6),
    };
    let memory = "memory (page faults and contention beyond sequential's share)";
    [(data, c.data), (memory.into(), c.memory), ("starting the workers".into(), c.spawn)]
        .into_iter()
        .fold(("the math".to_string(), c.math), |a, b| if b.1 > a.1 { b } else { a })
}

/// The `--work` from which `r` matches sequential `b`, by their measured fixed and per-unit
/// costs ([`break_even`]); `None` where heavier work would never make it pay.
pub(super) fn break_even_work(r: &Report, b: &Report) -> Option<f64> {
    let c = costs(r, Some(b));
    let (fixed, unit) = (r.wall_ms - c.math, c.math / f64::from(r.config.work.max(1)));
    let base_math = b.phases_ms.compute_max;
    let (base_fixed, base_unit) =
        (b.wall_ms - base_math, base_math / f64::from(b.config.work.max(1)));
    (unit < base_unit).then(|| ((fixed - base_fixed) / (base_unit - unit)).max(1.0))
}

/// The CPU time beside the wall time: what the processes computed, what the kernel did for
/// them, and the share of the machine that is.
fn cpu(r: &Report) -> String {
    let c = &r.cpu;
    let share = c.cpu_share_of_cores.map_or_else(String::new, |f| {
        format!(
            ", {:.0}% of what {} cores could give over its wall time",
            f * 100.0,
            r.meta.cpu_cores
        )
    });
    format!(
        "Its processes used {} ms of CPU computing and {} ms in the kernel (page faults, copies, \
         system calls){share}.",
        fmt_ms(c.cpu_user_ms),
        fmt_ms(c.cpu_system_ms)
    )
}

/// From which `--work` this strategy matches sequential: wall(K) = fixed + K · per-unit math,
/// for both, with fixed = wall − math and per-unit = math / work ([`Costs::math`]).
fn break_even(r: &Report, c: &Costs, b: &Report) -> String {
    let (fixed, unit) = (r.wall_ms - c.math, c.math / f64::from(r.config.work.max(1)));
    let base_math = b.phases_ms.compute_max;
    let (base_fixed, base_unit) =
        (b.wall_ms - base_math, base_math / f64::from(b.config.work.max(1)));
    if unit >= base_unit {
        return "Its busiest worker's math is no faster than sequential's, so by these costs \
                heavier work would not make it pay."
            .into();
    }
    let k = (fixed - base_fixed) / (base_unit - unit);
    if k <= 1.0 {
        return "By the measured costs it already pays at --work 1.".into();
    }
    format!(
        "By these costs it would match sequential from about --work {k:.1}: it spends {} ms on \
         what heavier work does not grow (starting workers, moving data, waiting), sequential \
         {} ms; each unit of work costs its busiest worker {} ms of math, sequential {} ms.",
        fmt_ms(fixed),
        fmt_ms(base_fixed),
        fmt_ms(unit),
        fmt_ms(base_unit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Report, Report) {
        let mut split = super::super::tests::sample();
        split.wall_ms = 100.0;
        split.phases_ms.generate = 20.0;
        split.phases_ms.encode = 25.0;
        split.phases_ms.transfer = 40.0;
        split.phases_ms.decode = 35.0;
        split.phases_ms.compute_max = 10.0;
        split.phases_ms.spawn = 4.0;
        split.traffic.payload_bytes_sent = 80_000_000;
        split.traffic.payload_bytes_received = 80_000_000;
        let mut seq = split.clone();
        seq.config.mode = "sequential".into();
        seq.config.sequential = true;
        seq.wall_ms = 60.0;
        seq.phases_ms.compute_max = 40.0;
        (seq, split)
    }

    #[test]
    fn the_function_is_called_memory_or_compute_bound_by_its_measured_cost() {
        let (seq, mut split) = pair();
        assert!(!explain(&[seq.clone(), split.clone()]).contains("-bound"), "nothing measured");
        split.intensity =
            super::super::Intensity::of(crate::calibrate::Intensity { fn_ns: 0.2, copy_ns: 0.9 });
        let text = explain(&[split.clone(), seq.clone()]);
        assert!(text.contains("costs 0.20 ns a value") && text.contains("0.90 ns"), "{text}");
        assert!(text.contains("memory-bound") && text.contains("cannot pay"), "{text}");
        split.intensity =
            super::super::Intensity::of(crate::calibrate::Intensity { fn_ns: 4.5, copy_ns: 0.9 });
        let text = explain(&[split, seq]);
        assert!(text.contains("compute-bound (5.0x the copy)"), "{text}");
        let said = super::super::summary::intensity_line(&pair().1);
        assert!(said.is_none());
        let mut near = pair().1;
        near.intensity =
            super::super::Intensity::of(crate::calibrate::Intensity { fn_ns: 1.2, copy_ns: 1.0 });
        let said = super::super::summary::intensity_line(&near).unwrap();
        assert!(said.ends_with("compute-bound (near the line)"), "{said}");
    }

    #[test]
    fn the_models_break_even_and_its_misses_are_said_where_it_predicted() {
        let (seq, mut split) = pair();
        split.prediction.predicted_pays_from_work = Some(3.5);
        split.prediction.predicted_wall_ms = Some(50.0);
        split.prediction.predicted_wall_ms_low = Some(45.0);
        split.prediction.predicted_wall_ms_high = Some(60.0);
        split.prediction.prediction_error = Some(1.0);
        let text = explain(&[seq.clone(), split.clone()]);
        assert!(text.contains("The model (calibrated on this machine) has it pay from --work 3.5"));
        assert!(text.contains("outside the model's interval (45.0-60.0 ms)"), "{text}");
        assert!(text.contains("off by +100% here"), "{text}");
        split.prediction.predicted_pays_from_work = None;
        split.prediction.predicted_never_pays = Some("its math is no faster".into());
        split.speedup = Some(0.6);
        let said = super::super::summary::summary(&[seq, split]);
        let why = said.iter().find(|s| s.text.contains("why:")).unwrap();
        assert!(
            why.text.contains("the model says it never pays: its math is no faster"),
            "{}",
            why.text
        );
    }

    #[test]
    fn the_dominant_cost_and_the_break_even_come_from_the_report() {
        let (seq, split) = pair();
        let text = explain(&[seq, split]);
        assert!(text.contains("sequential: 60.0 ms, of which 20.0 ms generating"), "{text}");
        assert!(text.contains("moving the data took 100 ms"), "{text}");
        assert!(text.contains("Its largest cost: moving the data (160.0 MB), 100 ms"), "{text}");
        // fixed 90 against 20, per unit 10 against 40: K = 70 / 30 = 2.3
        assert!(text.contains("from about --work 2.3"), "{text}");
        assert!(text.contains("ms in the kernel"), "{text}");
    }

    #[test]
    fn the_tutorials_conclusions_are_checked_against_the_figures() {
        let (seq, mut split) = pair();
        split.spread.verdict = Some(Verdict::Slower);
        let mut item = split.clone();
        item.config.mode = "item".into();
        item.wall_ms = 300.0;
        let mut threads = seq.clone();
        threads.config.mode = "threads".into();
        threads.wall_ms = 40.0;
        // Each strategy's fastest and slowest runs, apart from the others'.
        for (r, (min, max)) in
            [(&mut item, (290.0, 310.0)), (&mut split, (95.0, 105.0)), (&mut threads, (38.0, 42.0))]
        {
            (r.wall_ms_min, r.wall_ms_max) = (min, max);
            (r.spread.speedup_low, r.spread.speedup_high) = (None, None);
        }
        let text = explain(&[seq.clone(), item, split.clone(), threads.clone()]);
        assert!(
            text.contains("than the math\": holds (item: 100 ms moving data against 10.0 ms"),
            "{text}"
        );
        assert!(text.contains("sending items\": holds (split 100 ms, item 300 ms)"), "{text}");
        assert!(text.contains("as cheap as exp\": holds"), "{text}");
        assert!(
            text.contains("releases the GIL\": holds (threads 40.0 ms, the fastest process strategy, split, 100 ms)"),
            "{text}"
        );
        assert!(text.contains("\"Parallel NumPy Vector Math with Multiprocessing\""), "{text}");
        // Runs that overlap settle nothing, whatever the medians say.
        (threads.wall_ms_min, threads.wall_ms_max) = (35.0, 120.0);
        let text = explain(&[seq, split.clone(), threads]);
        assert!(text.contains("releases the GIL\": not clear from these runs"), "{text}");
        let mut fast = split;
        fast.wall_ms = 30.0;
        fast.spread.verdict = Some(Verdict::Faster);
        let (seq, _) = pair();
        let text = explain(&[seq, fast]);
        assert!(text.contains("as cheap as exp\": does not hold"), "{text}");
    }

    #[test]
    fn a_strategy_whose_math_is_not_faster_never_breaks_even() {
        let (seq, mut split) = pair();
        split.phases_ms.compute_max = 50.0;
        assert!(explain(&[seq, split]).contains("would not make it pay"));
    }

    #[test]
    fn shared_memory_faults_are_memory_not_math_and_do_not_block_the_break_even() {
        let (seq, mut shm) = pair();
        shm.config.mode = "shm".into();
        shm.traffic = Default::default();
        shm.phases_ms.generate = 40.0; // 20 ms more than sequential: shared pages
        shm.phases_ms.compute_max = 35.0; // its share of 40 ms on 2 workers is 20
        shm.phases_ms.encode = 0.0;
        shm.phases_ms.transfer = 1.0;
        shm.phases_ms.decode = 0.0;
        shm.wall_ms = 80.0;
        let text = explain(&[seq, shm]);
        assert!(text.contains("Its largest cost: memory"), "{text}");
        assert!(!text.contains("MB"), "no payload moved: {text}");
        // fixed 80 - 20 = 60 against 20, per unit 20 against 40: K = 40 / 20 = 2.0
        assert!(text.contains("from about --work 2.0"), "{text}");
    }
}

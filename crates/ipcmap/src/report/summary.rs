//! The answer first: what a person reads in five seconds, before any table. The sequential
//! time; each strategy against it in words, hyperfine's way ("sequential ran 1.35 times
//! faster than split"), fastest first; for each, its largest cost named truthfully, and from
//! which `--work` it would pay, estimated from its own run; the fastest and the slowest. Every
//! figure comes from the reports; each line carries a [`Tone`] that the terminal colours and
//! Markdown and HTML mark.

use super::explain::{break_even_work, largest_cost};
use super::table::{fmt_ms, group_digits};
use super::{Report, Verdict};

/// How a line reads: coloured on a terminal, marked in Markdown and HTML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Plain text.
    Plain,
    /// Clearly faster than sequential.
    Faster,
    /// Clearly slower than sequential.
    Slower,
    /// No clear difference, or no interval to tell.
    Unclear,
    /// A detail under the line before it (why, when it pays).
    Detail,
}

/// One line of the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Said {
    /// Its words.
    pub text: String,
    /// How it reads.
    pub tone: Tone,
    /// The strategy it is about, where it is about one.
    pub about: Option<String>,
}

fn said(text: String, tone: Tone) -> Said {
    Said { text, tone, about: None }
}

/// The summary of `reports` (one input; a sequential report, where there is one, is the
/// baseline). `busy` says the machine was busy (its warning), which an unclear verdict names.
pub fn summary(reports: &[Report]) -> Vec<Said> {
    let mut out = Vec::new();
    let Some(first) = reports.first() else {
        return out;
    };
    let baseline = reports.iter().find(|r| r.is_sequential());
    let busy = reports.iter().any(|r| r.warnings.iter().any(|w| w.contains("busy")));
    out.push(said(
        match baseline {
            Some(b) => format!(
                "sequential took {} ms (median of {} runs)",
                fmt_ms(b.wall_ms),
                b.repeat.max(b.spread.baseline_runs)
            ),
            None if first.spread.baseline_runs > 0 && first.speedup.is_some() => format!(
                "sequential took {} ms (median of {} hidden runs)",
                fmt_ms(first.speedup.unwrap_or(0.0) * first.wall_ms),
                first.spread.baseline_runs
            ),
            None => "no sequential run to compare with".to_string(),
        },
        Tone::Plain,
    ));
    if let Some(mut line) = baseline.and_then(model_line) {
        line.about = Some("sequential".into());
        out.push(line);
    }
    if let Some(line) = intensity_line(first) {
        out.push(said(line, Tone::Plain));
    }
    let mut others: Vec<&Report> = reports.iter().filter(|r| !r.is_sequential()).collect();
    others.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    let names = short_names(reports);
    for r in &others {
        let name = names.iter().find(|(p, _)| std::ptr::eq(*p, *r)).map_or("?", |(_, n)| n);
        let first = out.len();
        out.push(versus(name, r, busy));
        let (what, ms) = largest_cost(r, baseline);
        let mut why = format!(
            "  why: its largest cost is {what}: {} ms spent across its processes in {} ms of \
             wall time",
            fmt_ms(ms),
            fmt_ms(r.wall_ms)
        );
        let model = (&r.prediction.predicted_pays_from_work, &r.prediction.predicted_never_pays);
        if r.speedup.is_some_and(|s| s < 1.0) && model != (&None, &None) {
            why += &match model {
                (Some(k), _) => format!(
                    "; the model (calibrated on this machine) has it pay from --work {}",
                    if *k < 10.0 { format!("{k:.1}") } else { format!("{k:.0}") }
                ),
                (_, Some(never)) => format!("; the model says it never pays: {never}"),
                _ => String::new(),
            };
        } else if let Some(b) = baseline.filter(|_| r.speedup.is_some_and(|s| s < 1.0)) {
            why += &match break_even_work(r, b) {
                Some(k) => format!(
                    "; it would match sequential from about --work {} (estimated from this \
                     run's own costs, not calibrated: trust it to a factor of 2-4)",
                    if k < 10.0 { format!("{k:.1}") } else { format!("{k:.0}") }
                ),
                None => "; heavier work would not make it pay by these costs".into(),
            };
        }
        out.push(said(why, Tone::Detail));
        if let Some(line) = model_line(r) {
            out.push(line);
        }
        for line in &mut out[first..] {
            line.about = Some(name.to_string());
        }
    }
    let by_wall = |a: &&Report, b: &&Report| a.wall_ms.total_cmp(&b.wall_ms);
    if let (Some(fast), Some(slow)) =
        (reports.iter().min_by(by_wall), reports.iter().max_by(by_wall))
    {
        if reports.len() > 2 {
            let name = |r: &Report| {
                names
                    .iter()
                    .find(|(p, _)| std::ptr::eq(*p, r))
                    .map_or("?".to_string(), |(_, n)| n.clone())
            };
            out.push(said(
                format!(
                    "fastest: {} at {} ms; slowest: {} at {} ms ({:.0}x the fastest)",
                    name(fast),
                    fmt_ms(fast.wall_ms),
                    name(slow),
                    fmt_ms(slow.wall_ms),
                    slow.wall_ms / fast.wall_ms.max(1e-9)
                ),
                Tone::Plain,
            ));
        }
    }
    out
}

/// A sweep's answer: for each configuration of the parameters other than the strategy (each
/// function, each n ...), the fastest strategy and whether any strategy that starts processes
/// pays there, by its speedup interval against the sequential runs of that workload.
pub fn sweep_answers(reports: &[Report], axes: &[super::Axis]) -> Vec<Said> {
    use super::Axis;
    let others: Vec<Axis> = axes.iter().copied().filter(|a| *a != Axis::Mode).collect();
    let key = |r: &Report| {
        others.iter().map(|a| format!("{}={}", a.name(), a.label(r))).collect::<Vec<_>>().join(" ")
    };
    let mut groups: Vec<(String, Vec<&Report>)> = Vec::new();
    for r in reports {
        let k = key(r);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(r),
            None => groups.push((k, vec![r])),
        }
    }
    let processes = |r: &Report| r.processes;
    let speedup = |r: &Report| r.speedup.unwrap_or(if r.is_sequential() { 1.0 } else { 0.0 });
    let mut out = Vec::new();
    for (label, members) in groups {
        let Some(best) = members.iter().max_by(|a, b| speedup(a).total_cmp(&speedup(b))) else {
            continue;
        };
        let label = if label.is_empty() { "these runs".to_string() } else { label };
        let bound = match best.intensity.fn_bound {
            Some(b) => format!(" ({b}-bound)"),
            None => String::new(),
        };
        let mut text = format!(
            "{label}{bound}: fastest {} ({})",
            best.config.mode,
            match best.config.mode.as_str() {
                "sequential" => "no strategy beat it".to_string(),
                _ => format!("{}x sequential", times(speedup(best))),
            }
        );
        let tone = match members
            .iter()
            .filter(|r| processes(r))
            .max_by(|a, b| speedup(a).total_cmp(&speedup(b)))
        {
            Some(p) if p.spread.verdict == Some(Verdict::Faster) => {
                text +=
                    &format!("; processes pay: {} {}x faster", p.config.mode, times(speedup(p)));
                Tone::Faster
            }
            Some(p) if p.spread.verdict == Some(Verdict::Slower) => {
                text += &format!(
                    "; processes do not pay: the best, {}, {}x slower",
                    p.config.mode,
                    times(1.0 / speedup(p).max(1e-9))
                );
                Tone::Slower
            }
            Some(p) => {
                text += &format!("; processes: {} not clearly faster or slower", p.config.mode);
                Tone::Unclear
            }
            None => Tone::Plain,
        };
        out.push(said(text, tone));
    }
    out
}

/// The function's cost against a value's copy through memory, in a line: whether it is
/// memory-bound (no strategy that copies values can pay) or compute-bound here.
pub(super) fn intensity_line(r: &Report) -> Option<String> {
    let (fn_ns, copy_ns) = (r.intensity.fn_ns_per_value?, r.intensity.copy_ns_per_value?);
    let mut name = r.config.function.to_string();
    if name.chars().count() > 28 {
        name = name.chars().take(27).collect::<String>() + "…";
    }
    // Within 1.5x either way, a busy neighbour's memory traffic can tip the verdict.
    let ratio = fn_ns / copy_ns.max(1e-12);
    let near = if (1.0 / 1.5..=1.5).contains(&ratio) { " (near the line)" } else { "" };
    let (fn_text, copy_text) = (fmt_ms(fn_ns), fmt_ms(copy_ns));
    Some(match r.intensity.fn_bound? {
        "memory" => format!(
            "{name}: {fn_text} ns a value on one core, no more than copying it ({copy_text} \
             ns): memory-bound{near}: no strategy that copies values can pay"
        ),
        _ => format!(
            "{name}: {fn_text} ns a value on one core, {}x copying it ({copy_text} ns): \
             compute-bound{near}",
            times(ratio)
        ),
    })
}

/// The model's prediction beside the measurement, where `--predict` made one.
fn model_line(r: &Report) -> Option<Said> {
    let p = &r.prediction;
    let (mid, low, high, error) = (
        p.predicted_wall_ms?,
        p.predicted_wall_ms_low?,
        p.predicted_wall_ms_high?,
        p.prediction_error?,
    );
    Some(said(
        format!(
            "  model: predicted {} ms (interval {}-{} ms) from this machine's calibration, not \
             from this run; measured {} ms, {:+.0}%",
            fmt_ms(mid),
            fmt_ms(low.min(high)),
            fmt_ms(high.max(low)),
            fmt_ms(r.wall_ms),
            error * 100.0
        ),
        Tone::Detail,
    ))
}

/// One strategy against sequential, in words, hyperfine's way.
fn versus(name: &str, r: &Report, busy: bool) -> Said {
    let interval = r.spread.speedup_low.zip(r.spread.speedup_high);
    let Some(s) = r.speedup else {
        return said(
            format!("{name}: {} ms, no sequential run to compare with", fmt_ms(r.wall_ms)),
            Tone::Unclear,
        );
    };
    match (r.spread.verdict, interval) {
        (Some(Verdict::Faster), Some((low, high))) => said(
            format!("{name} ran {} times faster than sequential (interval {}-{}x)", times(s), times(low), times(high)),
            Tone::Faster,
        ),
        (Some(Verdict::Slower), Some((low, high))) => said(
            format!(
                "sequential ran {} times faster than {name} (interval {}-{}x)",
                times(1.0 / s),
                times(1.0 / high),
                times(1.0 / low)
            ),
            Tone::Slower,
        ),
        (_, Some((low, high))) => said(
            format!(
                "{name}: no clear difference (interval {}-{}x{})",
                times(low),
                times(high),
                if busy { ": the machine was busy" } else { "" }
            ),
            Tone::Unclear,
        ),
        _ => said(
            match s >= 1.0 {
                true => format!("{name}: {} times faster than sequential in one sample (no interval: --repeat 3 or more gives one)", times(s)),
                false => format!("{name}: {} times slower than sequential in one sample (no interval: --repeat 3 or more gives one)", times(1.0 / s)),
            },
            Tone::Unclear,
        ),
    }
}

/// Each report's short name: its strategy, plus whatever sets it apart from another report of
/// the same strategy (its label then).
pub fn short_names(reports: &[Report]) -> Vec<(&Report, String)> {
    reports
        .iter()
        .map(|r| {
            let twins = reports.iter().filter(|o| o.config.mode == r.config.mode).count();
            let name = match twins {
                1 => r.config.mode.clone(),
                _ => r.config.label.clone(),
            };
            (r, name)
        })
        .collect()
}

/// What every parallel report shares of its strategy's settings (codec, splits, chunk), for a
/// header line: "codec bincode, 64 splits, chunk 1"; empty where they differ or none has any.
pub fn common_settings(reports: &[Report]) -> String {
    let parallel: Vec<&Report> = reports.iter().filter(|r| !r.is_sequential()).collect();
    let same = |f: &dyn Fn(&Report) -> Option<String>| {
        let values: Vec<String> = parallel.iter().filter_map(|r| f(r)).collect();
        match values.first() {
            Some(v) if values.iter().all(|x| x == v) => Some(v.clone()),
            _ => None,
        }
    };
    let mut parts = Vec::new();
    if let Some(c) = same(&|r| r.config.codec.map(|c| c.to_string())) {
        parts.push(format!("codec {c}"));
    }
    if let Some(s) = same(&|r| r.config.splits.map(|s| s.to_string())) {
        parts.push(format!("{s} splits"));
    }
    if let Some(c) = same(&|r| r.config.chunksize.map(|c| c.to_string())) {
        parts.push(format!("chunk {c}"));
    }
    if let Some(t) = same(&|r| Some(r.job.transport.to_string()).filter(|t| !t.is_empty())) {
        parts.push(format!("over {t}"));
    }
    parts.join(", ")
}

/// A ratio as a person reads it: 2 decimals under 10, 1 under 100, whole numbers above.
pub(super) fn times(x: f64) -> String {
    match x {
        x if x >= 100.0 => group_digits(x.round() as u64),
        x if x >= 10.0 => format!("{x:.1}"),
        x => format!("{x:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(verdict: Verdict, speedup: f64, low: f64, high: f64) -> Vec<Report> {
        let mut split = super::super::tests::sample();
        split.wall_ms = 100.0;
        split.speedup = Some(speedup);
        split.spread.speedup_low = Some(low);
        split.spread.speedup_high = Some(high);
        split.spread.verdict = Some(verdict);
        let mut seq = split.clone();
        seq.config.mode = "sequential".into();
        seq.config.sequential = true;
        seq.wall_ms = 100.0 * speedup;
        seq.speedup = Some(1.0);
        vec![seq, split]
    }

    #[test]
    fn a_sweep_says_per_function_whether_processes_pay() {
        use crate::report::Axis;
        let mut reports = Vec::new();
        for (f, verdict, speedup) in
            [("x*2", Verdict::Slower, 0.5), ("exp(x)", Verdict::Faster, 1.6)]
        {
            for mut r in pair(verdict, speedup, speedup * 0.9, speedup * 1.1) {
                r.config.function = crate::kernel::Function::parse(f).unwrap();
                r.intensity.fn_bound = Some(if f == "x*2" { "memory" } else { "compute" });
                r.processes = !r.is_sequential();
                reports.push(r);
            }
        }
        let said = sweep_answers(&reports, &[Axis::Mode, Axis::Function]);
        let text: Vec<&str> = said.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with("fn=x*2 (memory-bound): fastest sequential"), "{text:?}");
        assert!(
            text[0].contains("processes do not pay: the best, split, 2.00x slower"),
            "{text:?}"
        );
        assert_eq!(said[0].tone, Tone::Slower);
        assert!(text[1].contains("fastest split (1.60x sequential); processes pay"), "{text:?}");
        assert_eq!(said[1].tone, Tone::Faster);
    }

    #[test]
    fn each_verdict_reads_as_words_the_right_way_round() {
        let slower = summary(&pair(Verdict::Slower, 0.5, 0.4, 0.625));
        assert!(slower[0].text.starts_with("sequential took"), "{slower:?}");
        assert_eq!(
            slower[1].text,
            "sequential ran 2.00 times faster than split (interval 1.60-2.50x)"
        );
        assert_eq!(slower[1].tone, Tone::Slower);
        assert!(slower[2].text.starts_with("  why: its largest cost is "), "{:?}", slower[2]);
        let faster = summary(&pair(Verdict::Faster, 3.0, 2.5, 3.5));
        assert_eq!(
            faster[1].text,
            "split ran 3.00 times faster than sequential (interval 2.50-3.50x)"
        );
        let unclear = summary(&pair(Verdict::NoClearDifference, 0.9, 0.35, 2.43));
        assert_eq!(unclear[1].text, "split: no clear difference (interval 0.35-2.43x)");
        assert_eq!(unclear[1].tone, Tone::Unclear);
    }
}

//! The measurement plan: how many warm-up and measured runs a configuration gets. By default
//! hyperfine's shape, a minimum count and a minimum time, bounded ([`AUTO_RUNS`]).

use std::time::Duration;

/// Warm-up runs when `--warmup` is not given: one, so that no measured run is the first
/// touch of fresh memory or a cold page cache.
pub const DEFAULT_WARMUP: usize = 1;
/// The measured runs when `--repeat` is not given, in hyperfine's shape: at least
/// [`AutoRuns::min`] runs, more until [`AutoRuns::min_time`] of measured wall time has
/// passed, never more than [`AutoRuns::max`].
///
/// Seven runs at least: with five, one stalled run (this machine's first touch of fresh memory
/// can take 200 ms) lands in the bootstrap's resampled median about one time in twenty and
/// stretches the speedup interval past 1; with seven, about one time in a hundred.
pub const AUTO_RUNS: AutoRuns = AutoRuns { min: 7, max: 15, min_time: Duration::from_millis(500) };

/// A run at least this long is a long one: the minimum count gives way to [`LONG_RUNS`] (at
/// 10^9 values one run takes seconds, and 7 of them plus warm-ups and baselines take minutes).
pub const LONG_RUN: Duration = Duration::from_secs(2);
/// Measured runs enough for a median and a spread where each run is long ([`LONG_RUN`]).
pub const LONG_RUNS: usize = 3;

/// Measured runs decided as the runs go: a minimum count and a minimum time, bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoRuns {
    /// Fewest measured runs.
    pub min: usize,
    /// Most measured runs.
    pub max: usize,
    /// Measured wall time, summed over runs, to reach before stopping (between min and max).
    pub min_time: Duration,
}

/// How many measured runs each configuration gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// Exactly this many (`--repeat N`).
    Exact(usize),
    /// Decided by the measured time ([`AUTO_RUNS`]).
    Auto(AutoRuns),
}

impl Runs {
    /// True while a configuration with `done` measured runs totalling `measured` wants another.
    pub fn wants_more(&self, done: usize, measured: Duration) -> bool {
        match *self {
            Runs::Exact(n) => done < n,
            Runs::Auto(a) => {
                // Long runs: the minimum time is long reached; a few runs give the spread.
                let long = done > 0 && measured >= LONG_RUN * done as u32;
                let min = if long { a.min.min(LONG_RUNS) } else { a.min };
                done < min || (done < a.max && measured < a.min_time)
            }
        }
    }

    /// The most runs this plan can make.
    pub fn max(&self) -> usize {
        match *self {
            Runs::Exact(n) => n,
            Runs::Auto(a) => a.max,
        }
    }

    /// "5–10 (until 0.5 s)" or "3".
    pub fn describe(&self) -> String {
        match *self {
            Runs::Exact(n) => n.to_string(),
            Runs::Auto(a) => format!(
                "{}–{} (until {} s of runs; {} where a run takes {} s or more)",
                a.min,
                a.max,
                a.min_time.as_secs_f64(),
                a.min.min(LONG_RUNS),
                LONG_RUN.as_secs()
            ),
        }
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    #[test]
    fn long_runs_stop_at_three_and_short_ones_keep_the_minimum_count() {
        let auto = Runs::Auto(AUTO_RUNS);
        // 3 runs of 5 s: enough; 3 runs of 10 ms: four more to come.
        assert!(!auto.wants_more(3, Duration::from_secs(15)));
        assert!(auto.wants_more(2, Duration::from_secs(10)));
        assert!(auto.wants_more(3, Duration::from_millis(30)));
        assert!(!auto.wants_more(7, Duration::from_secs(1)));
        assert!(auto.describe().contains("3 where a run takes 2 s or more"), "{}", auto.describe());
    }

    #[test]
    fn exact_runs_stop_at_the_count_and_auto_runs_follow_count_and_time() {
        let exact = Runs::Exact(3);
        assert!(exact.wants_more(2, Duration::from_secs(100)));
        assert!(!exact.wants_more(3, Duration::ZERO));
        let auto = Runs::Auto(AUTO_RUNS);
        // Below the minimum count: more, however long it took (short of long runs).
        assert!(auto.wants_more(AUTO_RUNS.min - 1, Duration::from_secs(6)));
        // Past the minimum: more only while under the minimum time, up to the maximum.
        assert!(auto.wants_more(AUTO_RUNS.min, Duration::ZERO));
        assert!(!auto.wants_more(AUTO_RUNS.min, AUTO_RUNS.min_time));
        assert!(!auto.wants_more(AUTO_RUNS.max, Duration::ZERO));
    }
}

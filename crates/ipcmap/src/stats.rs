//! Statistics over repeated runs: median, spread (median absolute deviation and standard
//! deviation), outliers by the modified z-score, and a bootstrap interval for the ratio of two
//! medians (the speedup). Pure functions over samples, so they are tested on known samples.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// Modified z-score above which a run is an outlier. hyperfine's threshold: Iglewicz and
/// Hoaglin's 3.5 flags a 1.1x run when the other runs agree within a few percent, which is
/// noise worth no warning; 14 flags the stalls that move a median.
pub const OUTLIER_Z: f64 = 14.0;

/// Bootstrap resamples drawn for an interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Fewest runs on each side for which an interval is given.
pub const MIN_RUNS_FOR_INTERVAL: usize = 3;

/// Fixed seed of the bootstrap, so the same runs always give the same interval.
const BOOTSTRAP_SEED: u64 = 0x1bc0_a11e;

/// The median; `None` for no samples. An even count gives the mean of the two middle values.
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(median_of_sorted(&sorted))
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// Median absolute deviation from the median (unscaled); `None` for no samples.
pub fn mad(samples: &[f64]) -> Option<f64> {
    let m = median(samples)?;
    let deviations: Vec<f64> = samples.iter().map(|x| (x - m).abs()).collect();
    median(&deviations)
}

/// Sample standard deviation (n - 1); `None` for fewer than two samples.
pub fn stddev(samples: &[f64]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let ss: f64 = samples.iter().map(|x| (x - mean).powi(2)).sum();
    Some((ss / (samples.len() - 1) as f64).sqrt())
}

/// Indices of the outliers: runs whose modified z-score `0.6745 |x - median| / MAD` is above
/// [`OUTLIER_Z`]. With a MAD of zero (half the runs identical) nothing is called an outlier.
pub fn outliers(samples: &[f64]) -> Vec<usize> {
    let (Some(m), Some(mad)) = (median(samples), mad(samples)) else {
        return Vec::new();
    };
    if mad <= 0.0 {
        return Vec::new();
    }
    samples
        .iter()
        .enumerate()
        .filter(|(_, &x)| 0.6745 * (x - m).abs() / mad > OUTLIER_Z)
        .map(|(i, _)| i)
        .collect()
}

/// A two-sided interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl Interval {
    /// Where `value` lies against the interval: below it, inside it, or above it.
    pub fn compare(&self, value: f64) -> std::cmp::Ordering {
        if value < self.low {
            std::cmp::Ordering::Less
        } else if value > self.high {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }
}

/// A 95% percentile-bootstrap interval for `median(numerator) / median(denominator)`: both
/// samples are resampled with replacement [`BOOTSTRAP_RESAMPLES`] times, and the 2.5th and
/// 97.5th percentiles of the resampled ratios are the bounds. `None` with fewer than
/// [`MIN_RUNS_FOR_INTERVAL`] runs on either side or a zero median. Deterministic: the
/// resampling is seeded.
pub fn ratio_of_medians_interval(numerator: &[f64], denominator: &[f64]) -> Option<Interval> {
    if numerator.len() < MIN_RUNS_FOR_INTERVAL || denominator.len() < MIN_RUNS_FOR_INTERVAL {
        return None;
    }
    let mut rng = SmallRng::seed_from_u64(BOOTSTRAP_SEED);
    let mut resample = |samples: &[f64], buf: &mut Vec<f64>| {
        buf.clear();
        buf.extend((0..samples.len()).map(|_| samples[rng.random_range(0..samples.len())]));
        buf.sort_by(f64::total_cmp);
        median_of_sorted(buf)
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut ratios = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        let num = resample(numerator, &mut a);
        let den = resample(denominator, &mut b);
        if den > 0.0 {
            ratios.push(num / den);
        }
    }
    if ratios.len() < BOOTSTRAP_RESAMPLES / 2 {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    Some(Interval { low: at(0.025), high: at(0.975) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn spread_of_a_known_sample() {
        // median 3, deviations 2 1 0 1 2 -> MAD 1; mean 3, sum of squares 10 -> sd sqrt(2.5)
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(mad(&s), Some(1.0));
        assert!((stddev(&s).unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(stddev(&[1.0]), None);
    }

    #[test]
    fn a_cold_stall_is_an_outlier_and_ordinary_noise_is_not() {
        let runs = [50.0, 52.0, 49.0, 51.0, 250.0, 50.5];
        assert_eq!(outliers(&runs), vec![4]);
        assert!(outliers(&[50.0, 52.0, 49.0, 51.0, 53.0]).is_empty());
        // 1.1x the median with a tight rest: noise, not an outlier.
        assert!(outliers(&[53.0, 52.5, 53.5, 52.0, 54.0, 57.1]).is_empty());
        // Half the runs identical: MAD 0, no verdict.
        assert!(outliers(&[5.0, 5.0, 5.0, 9.0]).is_empty());
    }

    #[test]
    fn the_interval_brackets_the_ratio_and_excludes_one_only_when_clear() {
        let seq = [50.0, 51.0, 49.0, 50.5, 49.5];
        let fast = [25.0, 26.0, 24.0, 25.5, 24.5];
        let i = ratio_of_medians_interval(&seq, &fast).unwrap();
        assert!(i.low <= 2.0 && 2.0 <= i.high, "{i:?}");
        assert_eq!(i.compare(1.0), std::cmp::Ordering::Less);
        // Overlapping samples: the interval holds 1.
        let noisy = [40.0, 60.0, 45.0, 55.0, 50.0];
        let i = ratio_of_medians_interval(&seq, &noisy).unwrap();
        assert_eq!(i.compare(1.0), std::cmp::Ordering::Equal, "{i:?}");
        // Too few runs: no interval.
        assert_eq!(ratio_of_medians_interval(&seq, &[1.0, 2.0]), None);
        // Deterministic.
        assert_eq!(
            ratio_of_medians_interval(&seq, &noisy),
            ratio_of_medians_interval(&seq, &noisy)
        );
    }
}

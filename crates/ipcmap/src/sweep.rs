//! Sweeps: a grid of configurations, every combination of the given parameter lists, run one
//! after another on the same data (like hyperfine's parameter lists). By default the
//! tutorial's 8x8 grid of `--splits` x `--chunksize` in split mode.

use crate::codec::CodecKind;
use crate::config::{ConfigError, RunConfig, RunRequest};
use crate::kernel::Function;
use crate::strategy::Mode;
use crate::transport::TransportKind;

/// The most configurations a sweep may hold; a bigger grid is refused before it is expanded.
pub const MAX_SWEEP_POINTS: usize = 4096;

/// The tutorial's values for both `--splits` and `--chunksize`: 1, 2, 4, ..., 128.
pub const TUTORIAL_VALUES: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

pub use crate::report::Axis;

/// The lists a sweep runs every combination of; an empty list means "the run default".
#[derive(Clone, Debug, Default)]
pub struct Grid {
    /// Strategies.
    pub modes: Vec<Mode>,
    /// Transports.
    pub transports: Vec<TransportKind>,
    /// Worker counts.
    pub workers: Vec<usize>,
    /// Element counts.
    pub n: Vec<usize>,
    /// Functions.
    pub functions: Vec<Function>,
    /// Work factors.
    pub works: Vec<u32>,
    /// Codecs.
    pub codecs: Vec<CodecKind>,
    /// Split counts.
    pub splits: Vec<usize>,
    /// Chunk sizes.
    pub chunksizes: Vec<usize>,
    /// Frame train sizes, bytes (0 = whole frames).
    pub frame_bytes: Vec<usize>,
}

/// A grid point that cannot run.
#[derive(Debug, thiserror::Error)]
#[error("grid point {point}: {source}")]
pub struct PointError {
    /// The point, as `splits=128 chunksize=1`.
    pub point: String,
    /// What is wrong with it.
    pub source: Box<ConfigError>,
}

/// A sweep that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Too many configurations.
    #[error("this sweep holds {points} configurations, more than the limit of {MAX_SWEEP_POINTS}: give fewer values per list, or split it into several sweeps")]
    TooBig { points: usize },
    /// One configuration is invalid.
    #[error(transparent)]
    Point(#[from] PointError),
}

impl Grid {
    /// The tutorial's grid: split mode, splits x chunksize over 1, 2, 4, ..., 128.
    pub fn tutorial() -> Grid {
        Grid {
            modes: Mode::named("split").into_iter().collect(),
            splits: TUTORIAL_VALUES.to_vec(),
            chunksizes: TUTORIAL_VALUES.to_vec(),
            ..Grid::default()
        }
    }

    /// The axes with more than one value, in the order the points vary (outermost first).
    pub fn varying(&self) -> Vec<Axis> {
        [
            (Axis::Mode, self.modes.len()),
            (Axis::Transport, self.transports.len()),
            (Axis::Workers, self.workers.len()),
            (Axis::N, self.n.len()),
            (Axis::Function, self.functions.len()),
            (Axis::Work, self.works.len()),
            (Axis::Codec, self.codecs.len()),
            (Axis::Splits, self.splits.len()),
            (Axis::Chunksize, self.chunksizes.len()),
            (Axis::FrameBytes, self.frame_bytes.len()),
        ]
        .into_iter()
        .filter(|&(_, len)| len > 1)
        .map(|(axis, _)| axis)
        .collect()
    }

    /// How many configurations the grid holds (saturating), computed without expanding it.
    pub fn size(&self) -> usize {
        [
            self.modes.len(),
            self.transports.len(),
            self.workers.len(),
            self.n.len(),
            self.functions.len(),
            self.works.len(),
            self.codecs.len(),
            self.splits.len(),
            self.chunksizes.len(),
            self.frame_bytes.len(),
        ]
        .into_iter()
        .fold(1usize, |acc, len| acc.saturating_mul(len.max(1)))
    }

    /// Every combination, as requests built on `base`; the last list varies fastest.
    pub fn points(&self, base: &RunRequest) -> Vec<RunRequest> {
        /// Every point of `points` once per value of `values`, set by `set` (the points
        /// unchanged where the list is empty).
        fn expand<T: Copy>(
            points: Vec<RunRequest>,
            values: &[T],
            set: impl Fn(&mut RunRequest, T),
        ) -> Vec<RunRequest> {
            if values.is_empty() {
                return points;
            }
            let mut out = Vec::with_capacity(points.len() * values.len());
            for point in points {
                for &v in values {
                    let mut r = point.clone();
                    set(&mut r, v);
                    out.push(r);
                }
            }
            out
        }
        let points = vec![base.clone()];
        let points = expand(points, &self.modes, |r, m| r.modes = vec![m]);
        let points = expand(points, &self.transports, |r, t| r.settings.transport = t);
        let points = expand(points, &self.workers, |r, w| r.workers = Some(w));
        let points = expand(points, &self.n, |r, n| r.settings.n = n);
        let points = expand(points, &self.functions, |r, f| r.settings.function = f);
        let points = expand(points, &self.works, |r, w| r.settings.work = w);
        let points = expand(points, &self.codecs, |r, c| r.settings.codec = c);
        let points = expand(points, &self.splits, |r, s| r.splits = Some(s));
        let points = expand(points, &self.chunksizes, |r, c| r.settings.chunksize = Some(c));
        expand(points, &self.frame_bytes, |r, f| r.settings.frame_bytes = f)
    }

    /// Validates every point before anything runs; refuses a grid of more than
    /// [`MAX_SWEEP_POINTS`] before expanding it.
    pub fn configs(&self, base: &RunRequest) -> Result<Vec<RunConfig>, SweepError> {
        let size = self.size();
        if size > MAX_SWEEP_POINTS {
            return Err(SweepError::TooBig { points: size });
        }
        self.points(base)
            .into_iter()
            .map(|r| {
                let point = describe(&r);
                r.validate().map_err(|source| PointError { point, source: Box::new(source) })
            })
            .collect::<Result<_, _>>()
            .map_err(SweepError::Point)
    }
}

fn describe(r: &RunRequest) -> String {
    let mut parts =
        vec![format!("mode={}", r.modes.iter().map(|m| m.name()).collect::<Vec<_>>().join("+"))];
    parts.push(format!("transport={}", r.settings.transport));
    if let Some(w) = r.workers {
        parts.push(format!("workers={w}"));
    }
    parts.push(format!("n={}", r.settings.n));
    if let Some(s) = r.splits {
        parts.push(format!("splits={s}"));
    }
    if let Some(c) = r.settings.chunksize {
        parts.push(format!("chunksize={c}"));
    }
    if r.settings.frame_bytes > 0 {
        parts.push(format!("frame-bytes={}", r.settings.frame_bytes));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tutorial_grid_has_64_points_varying_splits_then_chunksize() {
        let grid = Grid::tutorial();
        let points = grid.points(&RunRequest::default());
        assert_eq!(points.len(), 64);
        assert_eq!(grid.varying(), vec![Axis::Splits, Axis::Chunksize]);
        assert_eq!((points[1].splits, points[1].settings.chunksize), (Some(1), Some(2)));
        assert_eq!((points[8].splits, points[8].settings.chunksize), (Some(2), Some(1)));
    }

    #[test]
    fn lists_multiply_and_empty_lists_keep_the_default() {
        let grid =
            Grid { workers: vec![1, 2, 4], codecs: CodecKind::all().collect(), ..Grid::default() };
        let points = grid.points(&RunRequest::default());
        assert_eq!(points.len(), 3 * CodecKind::all().count());
        assert!(points.iter().all(|p| p.modes == RunRequest::default().modes
            && p.settings.n == RunRequest::default().settings.n));
    }

    #[test]
    fn transports_are_an_axis_outside_the_workers() {
        let transports: Vec<TransportKind> = TransportKind::all().filter(|t| t.spawns()).collect();
        let grid = Grid { transports: transports.clone(), workers: vec![1, 2], ..Grid::default() };
        assert_eq!(grid.varying(), [Axis::Transport, Axis::Workers]);
        let points = grid.points(&RunRequest::default());
        assert_eq!(points.len(), 2 * transports.len());
        assert_eq!(points[1].settings.transport, transports[0]);
        assert_eq!(points[2].settings.transport, transports[1]);
        assert_eq!(points[1].workers, Some(2));
    }

    #[test]
    fn a_huge_grid_is_refused_before_it_is_expanded() {
        let hundred: Vec<usize> = (1..=100).collect();
        let grid = Grid {
            workers: hundred.clone(),
            splits: hundred.clone(),
            chunksizes: hundred,
            ..Grid::default()
        };
        assert_eq!(grid.size(), 1_000_000);
        let err = grid.configs(&RunRequest::default()).unwrap_err().to_string();
        assert!(err.contains("1000000 configurations") && err.contains("4096"), "{err}");
    }

    #[test]
    fn a_bad_point_is_refused_by_name_before_anything_runs() {
        let grid = Grid {
            modes: Mode::named("threads").into_iter().collect(),
            splits: vec![4, 5000],
            ..Grid::default()
        };
        let base = RunRequest {
            settings: crate::settings::Settings { n: 1000, ..crate::settings::Settings::default() },
            ..RunRequest::default()
        };
        let err = grid.configs(&base).unwrap_err().to_string();
        assert!(err.contains("splits=5000") && err.contains("--splits"), "{err}");
    }
}

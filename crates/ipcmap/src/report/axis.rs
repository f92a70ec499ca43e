//! The parameters a sweep can vary, as axes of its tables and plots.

use super::Report;

/// A parameter a sweep can vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// `--mode`.
    Mode,
    /// `--transport`.
    Transport,
    /// `--workers`.
    Workers,
    /// `--n`.
    N,
    /// `--fn`.
    Function,
    /// `--work`.
    Work,
    /// `--codec`.
    Codec,
    /// `--splits`.
    Splits,
    /// `--chunksize`.
    Chunksize,
    /// `--frame-bytes`.
    FrameBytes,
}

impl Axis {
    /// The flag's name, as axis titles and messages show it.
    pub fn name(self) -> &'static str {
        match self {
            Axis::Mode => "mode",
            Axis::Transport => "transport",
            Axis::Workers => "workers",
            Axis::N => "n",
            Axis::Function => "fn",
            Axis::Work => "work",
            Axis::Codec => "codec",
            Axis::Splits => "splits",
            Axis::Chunksize => "chunksize",
            Axis::FrameBytes => "frame-bytes",
        }
    }

    /// This axis's value in a report, as a label.
    pub fn label(self, r: &Report) -> String {
        let opt = |v: Option<usize>| v.map_or("–".to_string(), |v| v.to_string());
        match self {
            Axis::Mode => r.config.mode.clone(),
            Axis::Transport => r.job.transport.to_string(),
            Axis::Workers => r.config.workers.to_string(),
            Axis::N => r.config.n.to_string(),
            Axis::Function => r.config.function.to_string(),
            Axis::Work => r.config.work.to_string(),
            Axis::Codec => r.config.codec.map_or("–".to_string(), |c| c.to_string()),
            Axis::Splits => opt(r.config.splits),
            Axis::Chunksize => opt(r.config.chunksize),
            Axis::FrameBytes => match r.environment.frame_bytes {
                0 => "whole".to_string(),
                b => b.to_string(),
            },
        }
    }
}

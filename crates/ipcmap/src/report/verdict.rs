//! A strategy's verdict against sequential: typed until it is written out.

use serde::Serialize;

/// Against sequential, from the bootstrap interval of the speedup: written as the words it
/// has always been (`"faster"`, `"slower"`, `"no clear difference"`, `"baseline"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum Verdict {
    /// The interval lies above 1.
    #[serde(rename = "faster")]
    Faster,
    /// The interval lies below 1.
    #[serde(rename = "slower")]
    Slower,
    /// The interval holds 1.
    #[serde(rename = "no clear difference")]
    NoClearDifference,
    /// Sequential itself.
    #[serde(rename = "baseline")]
    Baseline,
}

impl Verdict {
    /// The words, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::NoClearDifference => "no clear difference",
            Verdict::Baseline => "baseline",
        }
    }

    /// The verdict of an interval's comparison with 1 (`Less`: the interval lies above 1, as
    /// `stats::Interval::compare` orders it).
    pub fn of(ordering: std::cmp::Ordering) -> Verdict {
        match ordering {
            std::cmp::Ordering::Less => Verdict::Faster,
            std::cmp::Ordering::Greater => Verdict::Slower,
            std::cmp::Ordering::Equal => Verdict::NoClearDifference,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_written_as_its_words() {
        for v in [Verdict::Faster, Verdict::Slower, Verdict::NoClearDifference, Verdict::Baseline] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
    }
}

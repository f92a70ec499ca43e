//! [`Mode`]: a strategy as configurations and reports name it, and what it answers for them
//! (its tasks, splits and chunksize, its buffers, what it refuses, its frames).

use super::*;

/// A strategy, as configurations and reports name it: a handle on a [`REGISTRY`] entry.
#[derive(Clone, Copy)]
pub struct Mode(pub(super) &'static dyn Strategy);

impl Mode {
    /// The baseline every speedup is measured against and every result checked with.
    pub const SEQUENTIAL: Mode = Mode(&sequential::Sequential);

    /// Every strategy, in registry order.
    pub fn all() -> Vec<Mode> {
        REGISTRY.iter().map(|&s| Mode(s)).collect()
    }

    /// Every strategy that can run on this machine over `transport`, in registry order
    /// (`--mode all`).
    pub fn available(transport: TransportKind) -> Vec<Mode> {
        Mode::all()
            .into_iter()
            .filter(|m| m.0.available().is_ok() && m.0.runs_over(transport).is_ok())
            .collect()
    }

    /// The strategy called `name`.
    pub fn named(name: &str) -> Option<Mode> {
        REGISTRY.iter().find(|s| s.name() == name).map(|&s| Mode(s))
    }

    /// The strategy itself.
    pub fn strategy(self) -> &'static dyn Strategy {
        self.0
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// True for the strategies that spawn worker processes.
    pub fn uses_processes(self) -> bool {
        self.0.uses_processes()
    }

    /// True for the strategies that encode payloads with a codec.
    pub fn uses_codec(self) -> bool {
        self.0.uses_codec()
    }

    /// The chunksize it runs with under `s`: explicit, else its default; `None` where it has
    /// no tasks.
    pub fn chunksize(self, s: &Settings) -> Option<usize> {
        let default = self.0.default_chunksize(s.n, s.workers)?;
        Some(s.chunksize.unwrap_or(default))
    }

    /// Why it cannot run under `s`, checked before anything is allocated or spawned: what
    /// strategies of its kind refuse (a run in place its results cannot go over; a collective
    /// with fewer values than workers, or more bytes than the transport's collectives carry),
    /// then its own [`Strategy::check`].
    pub fn refusal(self, s: &Settings) -> Result<(), String> {
        let info = self.0.info();
        if s.in_place && !info.in_place {
            let can: Vec<&str> =
                Mode::all().into_iter().filter(|m| m.0.info().in_place).map(Mode::name).collect();
            return Err(format!(
                "cannot work in place (--in-place): its results arrive in frames beside the \
                 input; {} can",
                can.join(", ")
            ));
        }
        if info.collective {
            let workers = s.workers;
            if s.n < workers {
                return Err(format!(
                    "sends one part to each of the {workers} workers, but --n {} has fewer \
                     values than that: use a bigger --n or fewer workers",
                    s.n
                ));
            }
            // Values and a task header per worker, the biggest codec's bytes per value.
            let bytes = s.n as u128 * COLLECTIVE_BYTES_PER_VALUE + 64 * workers as u128;
            if let Some(max) = s.transport.info().collectives.filter(|&max| bytes > max as u128) {
                let max_n = (max as u64).saturating_sub(64 * workers as u64)
                    / COLLECTIVE_BYTES_PER_VALUE as u64;
                return Err(format!(
                    "moves all {bytes} bytes in one collective over {}, whose counts and \
                     offsets are C ints (at most {max} bytes): use --n {max_n} or less, or \
                     --mode split",
                    s.transport.name()
                ));
            }
        }
        self.0.check(s)
    }

    /// The most values one of its frames carries under `s`, where it ships data through a
    /// codec (0 where it does not): a split part, an item chunk, or a collective's share per
    /// worker; each strategy's own chunksize counts (item's default is Pool.map's rule).
    pub fn frame_values(self, s: &Settings) -> usize {
        if !self.uses_codec() {
            return 0;
        }
        let chunk = self.chunksize(s).unwrap_or(1);
        let task = self.splits(s).map_or(chunk, |parts| s.n.div_ceil(parts).saturating_mul(chunk));
        match self.0.info().collective {
            true => task.max(s.n.div_ceil(s.workers.max(1))),
            false => task,
        }
    }

    /// Whether it can write its result over its input (`--in-place`).
    pub fn works_in_place(self) -> bool {
        self.0.info().in_place
    }

    /// Whether it encodes values one by one (item mode's frames), not as blocks.
    pub fn ships_items(self) -> bool {
        self.uses_codec() && !self.0.uses_splits()
    }

    /// The n-value buffers the coordinator holds for one of its runs under `s`.
    pub fn buffers(self, s: &Settings) -> usize {
        self.0.buffers(s)
    }

    /// The parts it splits the input into under `s` (`None` where it does not split).
    pub fn splits(self, s: &Settings) -> Option<usize> {
        self.0.uses_splits().then_some(s.splits)
    }

    /// The tasks of one run under `s`.
    pub fn tasks(self, s: &Settings) -> Vec<Task> {
        match self.chunksize(s) {
            Some(c) => self.0.tasks(s, c),
            None => Vec::new(),
        }
    }
}

by_name!(Mode);

/// Bytes a value may take in a collective's frames (bincode's f64 and its framing, rounded up).
const COLLECTIVE_BYTES_PER_VALUE: u128 = 9;

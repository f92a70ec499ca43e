//! What this machine's operations cost, as `model` measured them (a [`Calibration`]),
//! and the arithmetic a strategy's prediction is made of. Each strategy states its own cost in
//! its own file (`Strategy::predict`) from these pieces: generating,
//! computing, first-touching memory, encoding and decoding, starting workers and moving bytes
//! through a transport. Where stages overlap (the scheduler keeps two tasks in flight per
//! worker) the prediction is a pipeline, the slowest stage setting the pace plus one task's
//! fill, never a sum of phases. Every figure carries its spread, so every prediction carries
//! an interval.

use crate::kernel::Function;
use serde::{Deserialize, Serialize};

/// A measured figure: the median of its samples and the fastest and slowest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// The median sample.
    pub median: f64,
    /// The lowest sample.
    pub low: f64,
    /// The highest sample.
    pub high: f64,
}

impl Figure {
    /// From samples (at least one).
    pub fn of(samples: &[f64]) -> Figure {
        let mut s: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        match s.as_slice() {
            [] => Figure::default(),
            s => Figure { median: s[s.len() / 2], low: s[0], high: s[s.len() - 1] },
        }
    }

    /// The figure at `pick`, for a capacity (more is faster): the slow end is its low.
    pub fn capacity_at(self, pick: Pick) -> f64 {
        match pick {
            Pick::Median => self.median,
            Pick::Low => self.high,
            Pick::High => self.low,
        }
    }

    /// The figure at `pick`.
    pub fn at(self, pick: Pick) -> f64 {
        match pick {
            Pick::Median => self.median,
            Pick::Low => self.low,
            Pick::High => self.high,
        }
    }
}

/// Which end of every figure a prediction uses: the medians, or all the fastest or all the
/// slowest samples (the prediction's interval).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Every figure's median.
    Median,
    /// Every figure's fastest sample.
    Low,
    /// Every figure's slowest sample.
    High,
}

/// A codec's costs, per value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CodecCost {
    /// Its name.
    pub codec: String,
    /// Encoding a block, ns a value.
    pub encode_ns: Figure,
    /// Decoding a block, ns a value.
    pub decode_ns: Figure,
    /// Encoding one value on its own (item mode), ns.
    pub item_encode_ns: Figure,
    /// Decoding one value on its own, ns.
    pub item_decode_ns: Figure,
    /// A block's bytes a value.
    pub bytes_per_value: f64,
    /// One value's bytes encoded on its own.
    pub item_bytes: f64,
}

/// A transport's costs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TransportCost {
    /// Its name.
    pub transport: String,
    /// Starting a worker until it says hello, ms a worker (a pool of two, halved).
    pub spawn_ms: Figure,
    /// A small message there and back, pipelined two deep, µs a message.
    pub message_us: Figure,
    /// Moving a byte one way, beyond the message's own cost, ns.
    pub byte_ns: Figure,
}

/// The version of [`Calibration`]'s layout; a cached file of another is measured anew.
pub const CALIBRATION_SCHEMA: u32 = 4;

/// This machine's costs, measured by `model::calibrate` in seconds and cached per
/// host, CPU, kernel and build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// [`CALIBRATION_SCHEMA`].
    pub schema: u32,
    /// The host, CPU model, kernel and build profile it was measured on.
    pub machine: String,
    /// When, seconds since the Unix epoch.
    pub taken_at_unix_s: u64,
    /// Drawing one input value on one thread, ns.
    pub generate_ns: Figure,
    /// Applying each function once to one value on one thread, data in cache, ns.
    pub kernel_ns: Vec<(Function, Figure)>,
    /// Each function's cost a value computed one value at a time (item's workers: no vector
    /// lanes), ns on one core.
    #[serde(default)]
    pub kernel_one_ns: Vec<(Function, Figure)>,
    /// Each further round of `--work` on one value (each round waits for the last: the
    /// function's latency, not its throughput), ns.
    #[serde(default)]
    pub kernel_chain_ns: Vec<(Function, Figure)>,
    /// First touch of fresh private memory (as this machine gives it: huge or 4 KiB pages),
    /// ns a value (8 bytes).
    pub touch_private_ns: Figure,
    /// First write of a fresh shared region (memfd), ns a value.
    pub touch_shared_ns: Figure,
    /// Mapping a shared region that exists (its pages made) into a new mapping and faulting
    /// it in for reading, as a new shm worker does with kept regions, ns a value.
    #[serde(default)]
    pub remap_shared_ns: Figure,
    /// Copying a value between buffers (memcpy), ns.
    pub copy_ns: Figure,
    /// The cores that really compute at once: the speedup of a compute-bound loop on every
    /// CPU against one (measured, not `nproc`).
    pub compute_cores: Figure,
    /// Every codec.
    pub codecs: Vec<CodecCost>,
    /// Every spawning transport measured.
    pub transports: Vec<TransportCost>,
    /// Hosts joined by a link the user gave (`predict --transport mpi --link-gbps --link-us`):
    /// extrapolated, never measured, so never cached.
    #[serde(skip)]
    pub link: Option<Link>,
}

/// A link between hosts, as given: its rate and one-way delay. Rank 0's link carries every
/// byte a run moves (both ways at once: full duplex), and every task crosses it there and
/// back.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// Bits a second, each way.
    pub bits_per_s: f64,
    /// One-way delay, ns.
    pub one_way_ns: f64,
    /// The measured transport whose costs stand for each rank's end of it (the launched
    /// transport's `costed_as`).
    pub base: String,
}

/// Tasks each worker has in flight (the scheduler's `DEPTH`, which `model` asserts equal).
pub const TASKS_IN_FLIGHT: usize = 2;

impl Calibration {
    /// `function`'s kernel cost, ns a value.
    pub fn kernel(&self, function: Function) -> Figure {
        self.kernel_ns.iter().find(|(f, _)| *f == function).map_or(Figure::default(), |(_, c)| *c)
    }

    /// A function's cost a value, one value at a time (the block kernel's where not measured).
    pub fn kernel_one(&self, function: Function) -> Figure {
        let one = self.kernel_one_ns.iter().find(|(f, _)| *f == function);
        one.map_or_else(|| self.kernel(function), |(_, c)| *c)
    }

    /// A further round of work on one value ([`Calibration::kernel_one`]'s where not measured).
    pub fn kernel_chain(&self, function: Function) -> Figure {
        let chain = self.kernel_chain_ns.iter().find(|(f, _)| *f == function);
        chain.map_or_else(|| self.kernel_one(function), |(_, c)| *c)
    }

    /// A codec's costs, by name.
    pub fn codec(&self, name: &str) -> Option<&CodecCost> {
        self.codecs.iter().find(|c| c.codec == name)
    }

    /// A transport's costs, by name.
    pub fn transport(&self, name: &str) -> Option<&TransportCost> {
        self.transports.iter().find(|t| t.transport == name)
    }
}

/// What a run costs, predicted: its wall time and where it goes, ms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prediction {
    /// The wall time, ms.
    pub wall_ms: f64,
    /// The stages that make it, ms each, in order (they overlap where the strategy pipelines).
    pub phases_ms: Vec<(&'static str, f64)>,
}

/// The run a prediction is for: settings that matter to cost, with `work` continuous so the
/// break-even can be solved for.
#[derive(Clone, Debug)]
pub struct Load<'a> {
    /// The calibration.
    pub cal: &'a Calibration,
    /// Which end of each figure.
    pub pick: Pick,
    /// Values.
    pub n: f64,
    /// Worker processes or threads.
    pub workers: f64,
    /// The function.
    pub function: Function,
    /// Rounds of it a value.
    pub work: f64,
    /// The codec's name.
    pub codec: String,
    /// The transport's name.
    pub transport: String,
    /// Tasks a run.
    pub tasks: f64,
    /// The largest task's values.
    pub task_values: f64,
    /// What the measured runs find from the runs before them.
    pub kept: Kept,
}

/// What a measured run finds made by the runs before it (after a warm-up): nothing by default,
/// the tutorial's cold timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// Its buffers are faulted in (`--reuse-buffers`): no first touch.
    pub buffers: bool,
    /// Its input exists (`--keep-input`): no generation.
    pub input: bool,
    /// Its workers exist and have the shared regions mapped (`--pool persistent`): no
    /// spawn, no fault.
    pub workers: bool,
}

impl Load<'_> {
    /// Cores that compute at once: the workers, as far as the machine has cores.
    pub fn parallel(&self) -> f64 {
        self.workers.min(self.cores())
    }

    /// The machine's cores that compute at once.
    pub fn cores(&self) -> f64 {
        self.cal.compute_cores.capacity_at(self.pick).max(1.0)
    }

    /// ns → ms.
    pub fn ms(ns: f64) -> f64 {
        ns / 1e6
    }

    /// Computing every value `work` times, ns, on one core.
    pub fn compute_ns(&self) -> f64 {
        self.n * self.work * self.cal.kernel(self.function).at(self.pick)
    }

    /// The same, one value at a time (item's workers): the first round at the function's
    /// throughput, each further one at its latency, ns on one core.
    pub fn compute_one_ns(&self) -> f64 {
        let one = self.cal.kernel_one(self.function).at(self.pick);
        let chain = self.cal.kernel_chain(self.function).at(self.pick);
        self.n * (one + (self.work - 1.0).max(0.0) * chain)
    }

    /// Generating the input on every core and touching it fresh, ns.
    pub fn generate_ns(&self, shared: bool) -> f64 {
        if self.kept.input {
            return 0.0;
        }
        self.n * (self.cal.generate_ns.at(self.pick) + self.touch_ns(shared)) / self.cores()
    }

    /// First touch of a value of a buffer the coordinator holds, private or shared, ns; 0
    /// where the buffers are kept from run to run.
    pub fn touch_ns(&self, shared: bool) -> f64 {
        match (self.kept.buffers, shared) {
            (true, _) => 0.0,
            (false, true) => self.cal.touch_shared_ns.at(self.pick),
            (false, false) => self.cal.touch_private_ns.at(self.pick),
        }
    }

    /// Faulting a value of shm's regions into its workers' mappings, ns: the input's pages
    /// mapped and the output's made (fresh regions); both mapped (kept regions, new
    /// workers); nothing (kept workers, their mappings kept).
    pub fn worker_touch_ns(&self) -> f64 {
        let remap = self.cal.remap_shared_ns.at(self.pick);
        match (self.kept.buffers, self.kept.workers) {
            (true, true) => 0.0,
            // The input and the output mapped again.
            (true, false) => 2.0 * remap,
            // The input the coordinator made, mapped; the output made.
            (false, _) => remap + self.cal.touch_shared_ns.at(self.pick),
        }
    }

    /// Starting the workers, ns (they start one after another). Across a link the ranks are
    /// started once per job by its launcher: a run pays none.
    pub fn spawn_ns(&self) -> f64 {
        if self.cal.link.is_some() || self.kept.workers {
            return 0.0;
        }
        self.transport_cost().map_or(0.0, |t| t.spawn_ms.at(self.pick) * 1e6) * self.workers
    }

    /// The transport's costs (the default's where this one was not measured; across a link,
    /// its base's).
    pub fn transport_cost(&self) -> Option<&TransportCost> {
        let name = match &self.cal.link {
            Some(link) => &link.base,
            None => &self.transport,
        };
        self.cal.transport(name).or(self.cal.transports.first())
    }

    /// Moving `bytes` one way at once, as a collective does, ns: at the link's rate plus its
    /// delay across one, else through the transport with one message's cost.
    pub fn one_way_ns(&self, bytes: f64) -> f64 {
        let local = self.bytes_ns(bytes) + self.message_ns() / 2.0;
        match &self.cal.link {
            Some(link) => {
                (bytes * 8.0 / link.bits_per_s.max(1.0) * 1e9).max(local) + link.one_way_ns
            }
            None => local,
        }
    }

    /// Across a link (`cal.link`): how fast it lets a run of `bytes` each way go, and what it
    /// adds once, ns: (pace, fill). The pace is the slower of the bytes at its rate (both ways
    /// at once) and the round trips (each worker has [`TASKS_IN_FLIGHT`] tasks in
    /// flight, so it finishes that many a round trip at most); the fill is a round trip and one
    /// task's bytes each way, the first task's out and the last one's back. (0, 0) on one
    /// machine.
    pub fn link_ns(&self, bytes: f64) -> (f64, f64) {
        let Some(link) = &self.cal.link else {
            return (0.0, 0.0);
        };
        let round_trip = 2.0 * link.one_way_ns;
        let at_rate = |b: f64| b * 8.0 / link.bits_per_s.max(1.0) * 1e9;
        let depth = TASKS_IN_FLIGHT as f64;
        let trips = (self.tasks / self.workers.max(1.0) / depth).ceil() * round_trip;
        // Before the first result can come back its task has crossed, and after the last
        // one leaves its worker it crosses too: one task's bytes each way, and a round trip.
        let task = at_rate(bytes / self.tasks.max(1.0));
        (at_rate(bytes).max(trips), round_trip + 2.0 * task)
    }

    /// One message there and back, ns.
    pub fn message_ns(&self) -> f64 {
        self.transport_cost().map_or(0.0, |t| t.message_us.at(self.pick) * 1e3)
    }

    /// Moving `bytes` one way, beyond the messages' own cost, ns.
    pub fn bytes_ns(&self, bytes: f64) -> f64 {
        self.transport_cost().map_or(0.0, |t| t.byte_ns.at(self.pick) * bytes)
    }

    /// A strategy that ships its values through its codec and transport, out and back, block
    /// by block (`items`: each value encoded on its own, as item mode does): the coordinator
    /// encodes, sends, receives and decodes every value; each worker decodes, computes and
    /// encodes its share, the bytes moved counted once a side.
    pub fn shipped(&self, items: bool) -> Option<Prediction> {
        let c = self.cal.codec(&self.codec)?;
        let pick = self.pick;
        let (encode, decode, bytes) = match items {
            true => (c.item_encode_ns.at(pick), c.item_decode_ns.at(pick), c.item_bytes),
            false => (c.encode_ns.at(pick), c.decode_ns.at(pick), c.bytes_per_value),
        };
        let moving = self.bytes_ns(bytes * self.n);
        let coordinator = self.n * (encode + decode) + moving + self.tasks * self.message_ns();
        let compute = match items {
            true => self.compute_one_ns(),
            false => self.compute_ns(),
        };
        let workers = self.n * (encode + decode) + moving + compute;
        let (spawn, generate) = (self.spawn_ns(), self.generate_ns(false));
        let (link, fill) = self.link_ns(bytes * self.n);
        let run = self.pipeline_ns(coordinator, workers).max(link) + fill;
        let mut phases_ms = vec![
            ("spawn", Self::ms(spawn)),
            ("generate", Self::ms(generate)),
            ("encode, move, decode (coordinator)", Self::ms(coordinator)),
            ("decode, compute, encode (workers, one core)", Self::ms(workers)),
        ];
        if self.cal.link.is_some() {
            phases_ms.push(("the link (extrapolated)", Self::ms(link + fill)));
        }
        phases_ms.push(("pipelined", Self::ms(run)));
        Some(Prediction { wall_ms: Self::ms(spawn + generate + run), phases_ms })
    }

    /// A pipeline over the workers: the coordinator's serial work a run (`coordinator_ns`),
    /// the workers' (`workers_ns`, on one core: shared among them), one task's fill, and the
    /// machine's cores shared by both. The slowest of: the coordinator alone, the workers in
    /// parallel, everything over every core.
    pub fn pipeline_ns(&self, coordinator_ns: f64, workers_ns: f64) -> f64 {
        let fill = workers_ns / self.tasks.max(1.0);
        let paced = coordinator_ns
            .max(workers_ns / self.parallel())
            .max((coordinator_ns + workers_ns) / self.cores());
        paced + fill
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_keeps_its_spread_and_a_pipeline_is_paced_by_its_slowest_stage() {
        let f = Figure::of(&[3.0, 1.0, 2.0, f64::NAN]);
        assert_eq!((f.low, f.median, f.high), (1.0, 2.0, 3.0));
        let cal = Calibration {
            compute_cores: Figure { median: 2.0, low: 2.0, high: 2.0 },
            ..Calibration::default()
        };
        let load = Load {
            cal: &cal,
            pick: Pick::Median,
            n: 1e6,
            workers: 4.0,
            function: Function::Exp,
            work: 1.0,
            codec: "raw".into(),
            transport: "local".into(),
            tasks: 10.0,
            task_values: 1e5,
            kept: Kept::default(),
        };
        assert_eq!(load.parallel(), 2.0, "no more at once than the cores");
        // Coordinator-bound, worker-bound, core-bound.
        assert_eq!(load.pipeline_ns(100.0, 10.0), 100.0 + 1.0);
        assert_eq!(load.pipeline_ns(1.0, 100.0), 100.0 / 2.0 + 10.0 + 0.5);
    }
}

//! What the probes report: the channel probe (`coordinator probe`, with its floors and its
//! per-size table), the codec probe (`probe --codecs`) and the function probe (`probe --fn`).

use crate::codec::CodecKind;
use crate::kernel::Function;
use serde::Serialize;

/// What the probes measured.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ProbeReport {
    /// Workers started by the spawn probe.
    pub workers: usize,
    /// Spawning them until every one said hello, ms.
    pub spawn_hello_ms: f64,
    /// Bytes per message of the echo probe.
    pub echo_message_bytes: usize,
    /// Messages echoed.
    pub echo_messages: usize,
    /// Bytes both ways per second spent inside sends (both sides), GB/s: the same measure as
    /// a report's `channel_gbps`.
    pub echo_gbps: f64,
    /// Bytes both ways per second of wall time, GB/s.
    pub echo_wall_gbps: f64,
    /// 8-byte messages echoed.
    pub echo8_messages: usize,
    /// Wall time per one-way 8-byte message, µs.
    pub echo8_us_per_message: f64,
    /// The 8-byte echo's round trips (two in flight, so pipelined): median, µs.
    pub echo8_rtt_p50_us: f64,
    /// See `echo8_rtt_p50_us`: the 99th percentile.
    pub echo8_rtt_p99_us: f64,
    /// The machine's own floors, measured in the same probe with no library in between.
    #[serde(flatten)]
    pub floor: ProbeFloor,
    /// The transport probed: "local", "uds" or "mpi" (where `spawn_hello_ms` is MPI's init
    /// time, paid once per job, and a run's spawn is only its setup messages).
    pub transport: &'static str,
    /// The workers are started once per job (a launcher's), so `spawn_hello_ms` is that
    /// start, not a pool's.
    #[serde(skip)]
    pub started_per_job: bool,
    /// The input generator on every core into memory already faulted in, GB/s of values
    /// written (median of 5 draws of 10M values).
    pub generate_gbps: f64,
    /// The same into fresh memory, its first-touch page faults included, as a run pays.
    pub generate_fresh_gbps: f64,
    /// Filling the same faulted-in memory with one value on every core, GB/s: the memory
    /// write floor the generator is measured against.
    pub floor_fill_gbps: f64,
    /// Per message size (8 B, then powers of 4 to 4 MiB), latency and bandwidth in the shape
    /// of OSU's osu_latency and osu_bw, each measured for a share of time, not a count.
    pub sizes: Vec<ProbeSize>,
    /// What the whole probe took, s (the echoes adapt to the link: seconds on a slow one).
    pub seconds: f64,
}

/// One message size of the probe, as OSU's osu_latency and osu_bw report it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ProbeSize {
    /// The message's bytes.
    pub bytes: usize,
    /// osu_latency's figure: one message in flight, there and back; half the round trip,
    /// averaged over the messages, µs.
    pub latency_us: f64,
    /// The same, the median round trip's half, µs.
    pub latency_p50_us: f64,
    /// Messages the latency was measured over.
    pub latency_messages: usize,
    /// osu_bw's figure: `window` messages in flight one way (each answered by 8 bytes), bytes
    /// sent per second of wall time, MB/s (10^6 bytes, as OSU's).
    pub bandwidth_mbps: f64,
    /// Messages the bandwidth was measured over.
    pub bandwidth_messages: usize,
    /// Messages in flight: OSU's 64, fewer where 64 would hold more than 16 MiB.
    pub window: usize,
}

/// The floors a probe measures beside a transport ([`crate::floor`]): the same echoes over a
/// bare socketpair and bare pipes, a thread of the coordinator echoing, and memcpy.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ProbeFloor {
    /// Socketpair echo of the same messages, GB/s both ways of wall time.
    pub floor_socketpair_gbps: f64,
    /// Pipe echo of the same messages, GB/s both ways of wall time.
    pub floor_pipe_gbps: f64,
    /// The same pipe echo with each message sent by `vmsplice` (pages lent, not copied).
    pub floor_pipe_vmsplice_gbps: f64,
    /// memcpy of one message, GB/s.
    pub floor_memcpy_gbps: f64,
    /// Socketpair 8-byte echo: wall time per one-way message, µs.
    pub floor_echo8_us_per_message: f64,
    /// Socketpair 8-byte echo's round trips: median, µs.
    pub floor_echo8_rtt_p50_us: f64,
    /// See `floor_echo8_rtt_p50_us`: the 99th percentile.
    pub floor_echo8_rtt_p99_us: f64,
    /// The transport's echo (`echo_wall_gbps`) as a fraction of the socketpair floor's.
    pub echo_of_socketpair_floor: f64,
    /// The transport's 8-byte µs per message as a multiple of the socketpair floor's.
    pub echo8_of_socketpair_floor: f64,
}

/// What `probe --codecs` measured: every codec's block encode and decode at several sizes,
/// beside a memcpy of the same bytes in the same run.
#[derive(Clone, Debug, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CodecProbe {
    /// The schema of this object, for programs that keep it.
    pub schema: &'static str,
    /// Timed samples per codec and size (after one warm-up), interleaved across codecs.
    pub samples: usize,
    /// One row per codec and size, sizes in the inner order.
    pub rows: Vec<CodecRow>,
    /// memcpy of the values' bytes, per size.
    pub memcpy: Vec<MemcpyRow>,
}

/// One codec at one size. GB/s count the values' own bytes (8 a value), so codecs compare
/// with each other and with memcpy whatever their output size.
#[derive(Clone, Debug, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CodecRow {
    /// The codec.
    pub codec: CodecKind,
    /// "block" (one encode of the whole slice, as split sends a part) or "items" (each value
    /// encoded on its own, as item mode sends a chunk).
    pub shape: &'static str,
    /// Values in the block.
    pub values: usize,
    /// Encoded bytes per value.
    pub bytes_per_value: f64,
    /// Encoding, GB/s of values: median of the samples, then the slowest and fastest.
    pub encode_gbps: f64,
    /// See `encode_gbps`.
    pub encode_gbps_min: f64,
    /// See `encode_gbps`.
    pub encode_gbps_max: f64,
    /// Decoding (for rkyv: validating the archive and reading it in place into the output),
    /// GB/s of values: the median, the slowest, the fastest.
    pub decode_gbps: f64,
    /// See `decode_gbps`.
    pub decode_gbps_min: f64,
    /// See `decode_gbps`.
    pub decode_gbps_max: f64,
    /// Median encode and decode time per value, ns.
    pub encode_ns_per_value: f64,
    /// See `encode_ns_per_value`.
    pub decode_ns_per_value: f64,
}

/// memcpy of one size's bytes.
#[derive(Clone, Debug, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct MemcpyRow {
    /// Values copied.
    pub values: usize,
    /// GB/s, median of the samples.
    pub gbps: f64,
}

impl CodecProbe {
    /// memcpy's GB/s at `values`, if measured.
    pub fn memcpy_at(&self, values: usize) -> Option<f64> {
        self.memcpy.iter().find(|m| m.values == values).map(|m| m.gbps)
    }

    /// "memcpy in the same run: 1 values 2.2 GB/s; ..." for the human formats.
    pub fn memcpy_line(&self) -> String {
        let each: Vec<String> =
            self.memcpy.iter().map(|m| format!("{} values {:.2} GB/s", m.values, m.gbps)).collect();
        format!("memcpy in the same run: {}", each.join("; "))
    }
}

/// The schema name of [`CodecProbe`].
pub const CODEC_PROBE_SCHEMA: &str = "ipcmap.codecs/1";

/// [`FunctionProbe::schema`]'s value.
pub const FUNCTION_PROBE_SCHEMA: &str = "ipcmap.functions/1";

/// What `probe --fn` measured: each function's cost a value on one core, in cache and
/// streamed, beside a value's copy through memory, from interleaved samples after a warm-up.
#[derive(Clone, Debug, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FunctionProbe {
    /// The schema of this object, for programs that keep it.
    pub schema: &'static str,
    /// Timed samples per function (after one warm-up), interleaved across functions.
    pub samples: usize,
    /// Values of the streamed measurement.
    pub values: usize,
    /// The instruction set the kernel ran with.
    pub kernel_isa: String,
    /// Copying one value between buffers beyond the caches (8 bytes read, 8 written), ns:
    /// median, fastest and slowest sample.
    pub copy_ns_per_value: [f64; 3],
    /// One row per function, in the order given.
    pub rows: Vec<FunctionRow>,
}

/// One function's cost a value on one core.
#[derive(Clone, Debug, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FunctionRow {
    /// The function, as given to --fn.
    pub function: Function,
    /// Input and output in L1 cache, ns: median, fastest and slowest sample.
    pub in_cache_ns_per_value: [f64; 3],
    /// Over `values` values from memory to memory, ns: median, fastest and slowest sample.
    pub streamed_ns_per_value: [f64; 3],
    /// "memory" where the function costs no more in cache than copying a value (no strategy
    /// that copies each value to a worker and back can pay on this machine), else "compute".
    pub bound: &'static str,
}

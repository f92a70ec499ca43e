//! Raw ipc-channel probes: the floors the strategies are measured against, taken with the same
//! worker executable in its `Echo` mode (every frame sent straight back, untouched).
//!
//! - spawn-and-hello: starting N workers until each has said hello;
//! - echo: S-byte messages round-tripped through one worker, two in flight (as the scheduler
//!   keeps them), GB/s counting both directions;
//! - 8-byte echo: the same with 8-byte messages, µs per one-way message.

use crate::codec::CodecKind;
use crate::error::RunError;
use crate::kernel::Function;
use crate::protocol::{Setup, ACK, ECHO};
use crate::scheduler::DEPTH;
use crate::transport::{Event, Pool, PoolSpec, Transport};
use std::path::Path;
use std::time::{Duration, Instant};

/// The largest echoed message (`probe --bytes`): 1 GiB.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

pub use crate::report::ProbeReport;
use crate::report::{CodecProbe, CodecRow, MemcpyRow, ProbeFloor, ProbeSize, CODEC_PROBE_SCHEMA};

/// The sizes `probe --codecs` measures: one value, a thousand, one of 64 parts of 10M (what
/// split sends at the defaults), and 10M in one block.
pub const CODEC_SIZES: [usize; 4] = [1, 1_000, 156_250, 10_000_000];

/// The biggest block `probe --codecs --values` measures (every codec's bytes are kept at once).
pub const MAX_CODEC_VALUES: usize = 100_000_000;

/// Timed samples per codec and size.
const CODEC_SAMPLES: usize = 5;

/// Values a sample works through at least (small blocks are encoded many times per sample,
/// so a sample is long enough to time).
const SAMPLE_VALUES: usize = 200_000;

/// Every codec's block encode and decode at each of `sizes`, and memcpy of the same bytes:
/// one warm-up, then five samples, round-robin over the codecs so that drift
/// lands on every codec alike. Every decode is checked bit for bit against the input. A stop
/// asked for by a signal ends it between samples.
pub fn codecs(sizes: &[usize]) -> Result<CodecProbe, RunError> {
    let mut rows = Vec::new();
    let mut memcpy = Vec::new();
    for &n in sizes {
        let (block, copies) = codec_shape(n, false)?;
        rows.extend(block);
        memcpy.push(MemcpyRow { values: n, gbps: summary(&copies).0 });
    }
    // Item mode's shape: each value encoded on its own, a thousand of them.
    rows.extend(codec_shape(CODEC_ITEMS, true)?.0);
    Ok(CodecProbe { schema: CODEC_PROBE_SCHEMA, samples: CODEC_SAMPLES, rows, memcpy })
}

/// Values in the items rows of `probe --codecs`.
pub const CODEC_ITEMS: usize = 1_000;

/// Every codec over `n` values, as one block or as items: its rows, and memcpy's GB/s per
/// sample.
fn codec_shape(n: usize, items: bool) -> Result<(Vec<CodecRow>, Vec<f64>), RunError> {
    let codecs: Vec<CodecKind> = CodecKind::all().collect();
    let input = crate::data::generate(1, n);
    let mut copy = vec![0.0f64; n];
    let repeats = SAMPLE_VALUES.div_ceil(n.max(1));
    let mut bytes: Vec<Vec<u8>> = codecs.iter().map(|_| Vec::new()).collect();
    let mut output = vec![0.0f64; n];
    let mut enc: Vec<Vec<f64>> = vec![Vec::new(); codecs.len()];
    let mut dec: Vec<Vec<f64>> = vec![Vec::new(); codecs.len()];
    let mut copies = Vec::new();
    let bad =
        |e: crate::codec::CodecError| RunError::Codec { task: 0, phase: "probe", source: e.into() };
    for sample in 0..=CODEC_SAMPLES {
        if crate::interrupt::requested().is_some() {
            return Err(crate::interrupt::interrupted());
        }
        // memcpy at its best: the same copy once untimed, so its caches are warm.
        copy.copy_from_slice(std::hint::black_box(&input));
        let t = Instant::now();
        for _ in 0..repeats {
            copy.copy_from_slice(std::hint::black_box(&input));
        }
        let copied = t.elapsed();
        for (c, kind) in codecs.iter().enumerate() {
            let codec = kind.codec();
            let t = Instant::now();
            for _ in 0..repeats {
                bytes[c].clear();
                match items {
                    true => input
                        .iter()
                        .try_for_each(|&x| codec.encode_item(x, &mut bytes[c]))
                        .map_err(bad)?,
                    false => codec.encode_block(&input, &mut bytes[c]).map_err(bad)?,
                }
            }
            let encoded = t.elapsed();
            let t = Instant::now();
            for _ in 0..repeats {
                match items {
                    true => {
                        let mut at = 0;
                        for y in output.iter_mut() {
                            let (x, used) = codec.decode_item(&bytes[c][at..]).map_err(bad)?;
                            *y = x;
                            at += used;
                        }
                    }
                    false => codec.decode_block_into(&bytes[c], &mut output).map_err(bad)?,
                }
            }
            let decoded = t.elapsed();
            if !output.iter().zip(&input).all(|(a, b)| a.to_bits() == b.to_bits()) {
                return Err(RunError::Channel {
                    what: format!("the {kind} codec"),
                    message: "values decoded to other values".into(),
                });
            }
            if sample > 0 {
                let gbps =
                    |d: Duration| (8 * n * repeats) as f64 / d.as_secs_f64().max(1e-12) / 1e9;
                enc[c].push(gbps(encoded));
                dec[c].push(gbps(decoded));
            }
        }
        if sample > 0 {
            copies.push((8 * n * repeats) as f64 / copied.as_secs_f64().max(1e-12) / 1e9);
        }
    }
    let rows = codecs
        .iter()
        .enumerate()
        .map(|(c, &codec)| {
            let (e, d) = (summary(&enc[c]), summary(&dec[c]));
            let per_value = |gbps: f64| 8.0 / gbps.max(1e-12);
            CodecRow {
                codec,
                shape: if items { "items" } else { "block" },
                values: n,
                bytes_per_value: bytes[c].len() as f64 / n.max(1) as f64,
                encode_gbps: e.0,
                encode_gbps_min: e.1,
                encode_gbps_max: e.2,
                decode_gbps: d.0,
                decode_gbps_min: d.1,
                decode_gbps_max: d.2,
                encode_ns_per_value: per_value(e.0),
                decode_ns_per_value: per_value(d.0),
            }
        })
        .collect();
    Ok((rows, copies))
}

/// Values of `probe --fn`'s streamed measurement by default: the tutorial's vector.
pub const FUNCTION_VALUES: usize = 10_000_000;

/// Values of the in-cache measurement: input and output together fit L1.
const IN_CACHE: usize = 1536;

/// Times each function on one core: over 1,536 values repeated for about a millisecond
/// (in cache), and over `values` values (streamed), interleaved across functions, after one
/// warm-up, with a copy of `values` values in each round.
pub fn functions(
    functions: &[Function],
    values: usize,
    samples: usize,
) -> crate::report::FunctionProbe {
    use crate::report::{FunctionProbe, FunctionRow, FUNCTION_PROBE_SCHEMA};
    let input: Vec<f64> = {
        let mut v = vec![0.0; values];
        crate::data::generate_at(1, 0, &mut v);
        v
    };
    let mut output = vec![0.0; values];
    let small = &input[..IN_CACHE.min(values)];
    let mut small_out = vec![0.0; small.len()];
    let per = |t: Instant, n: usize| t.elapsed().as_nanos() as f64 / n.max(1) as f64;
    let mut copy = Vec::new();
    let mut in_cache = vec![Vec::new(); functions.len()];
    let mut streamed = vec![Vec::new(); functions.len()];
    for sample in 0..=samples {
        let t = Instant::now();
        output.copy_from_slice(std::hint::black_box(&input));
        let copied = per(t, values);
        if sample > 0 {
            copy.push(copied);
        }
        for (f, &function) in functions.iter().enumerate() {
            let t = Instant::now();
            crate::kernel::apply(function, small, &mut small_out);
            let once = t.elapsed().as_nanos() as f64;
            let rounds = (1e6 / once.max(1.0)).clamp(1.0, 10_000.0) as usize;
            let t = Instant::now();
            for _ in 0..rounds {
                crate::kernel::apply(function, std::hint::black_box(small), &mut small_out);
            }
            let cached = per(t, rounds * small.len());
            let t = Instant::now();
            crate::kernel::apply(function, std::hint::black_box(&input), &mut output);
            let whole = per(t, values);
            std::hint::black_box((&small_out, &output));
            if sample > 0 {
                in_cache[f].push(cached);
                streamed[f].push(whole);
            }
        }
    }
    let three = |xs: &[f64]| {
        let (median, min, max) = summary(xs);
        [median, min, max]
    };
    let copy_ns_per_value = three(&copy);
    let rows = functions
        .iter()
        .enumerate()
        .map(|(f, &function)| {
            let in_cache_ns_per_value = three(&in_cache[f]);
            FunctionRow {
                function,
                in_cache_ns_per_value,
                streamed_ns_per_value: three(&streamed[f]),
                bound: if in_cache_ns_per_value[0] <= copy_ns_per_value[0] {
                    "memory"
                } else {
                    "compute"
                },
            }
        })
        .collect();
    FunctionProbe {
        schema: FUNCTION_PROBE_SCHEMA,
        samples,
        values,
        kernel_isa: crate::kernel::isa().to_string(),
        copy_ns_per_value,
        rows,
    }
}

/// (median, min, max) of samples.
fn summary(xs: &[f64]) -> (f64, f64, f64) {
    let median = crate::stats::median(xs).unwrap_or(0.0);
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(0.0, f64::max);
    (median, if min.is_finite() { min } else { 0.0 }, max)
}

/// Runs every probe over `transport`: `workers` for the spawn probe, `message_bytes` for the
/// echo probe, `sizes` (bytes) for the per-size latency and bandwidth.
pub fn run(
    transport: &dyn Transport,
    worker_bin: &Path,
    workers: usize,
    message_bytes: usize,
    sizes: &[usize],
    timeout: Duration,
) -> Result<ProbeReport, RunError> {
    // The message, its echo and the channel's copies in flight.
    let need = (message_bytes as u64).saturating_mul(2 + 2 * DEPTH as u64);
    if let Some(available) = crate::config::available_memory_bytes().filter(|&a| need > a) {
        return Err(RunError::Channel {
            what: format!("echo of {message_bytes}-byte messages"),
            message: format!(
                "needs about {} MiB, but only {} MiB is available",
                need >> 20,
                available >> 20
            ),
        });
    }
    let started = Instant::now();
    let mut pool = echo_pool(transport, worker_bin, workers, timeout, message_bytes, false)?;
    // Where workers start once per job (a launcher's), that start stands for the spawn.
    let spawn_hello_ms = transport.init_ns().unwrap_or(pool.spawn_ns()) as f64 / 1e6;
    for w in 0..workers {
        pool.close(w);
    }
    for w in 0..workers {
        pool.reap(w, Duration::from_secs(1));
    }
    drop(pool);

    // Up to 64 big messages and 100,000 small ones, each for about a second at most.
    let big = echo(transport, worker_bin, message_bytes, Exchange::timed(4, 64, SECOND), timeout)?;
    let small = echo(transport, worker_bin, 8, Exchange::timed(100, 100_000, SECOND), timeout)?;
    let (echo_messages, echo8_messages) = (big.messages, small.messages);
    let sizes = per_size(transport, worker_bin, sizes, timeout)?;
    let floors =
        crate::floor::measure(message_bytes, echo_messages, echo8_messages).map_err(|e| {
            RunError::Channel { what: "the floor probe".into(), message: e.to_string() }
        })?;
    let echo_wall_gbps =
        (2 * message_bytes * echo_messages) as f64 / big.wall.as_nanos().max(1) as f64;
    let echo8_us_per_message = small.wall.as_nanos() as f64 / 1e3 / (2 * echo8_messages) as f64;
    let floor = ProbeFloor {
        floor_socketpair_gbps: floors.socketpair.wall_gbps(message_bytes),
        floor_pipe_gbps: floors.pipe.wall_gbps(message_bytes),
        floor_pipe_vmsplice_gbps: floors.pipe_vmsplice.wall_gbps(message_bytes),
        floor_memcpy_gbps: floors.memcpy_gbps,
        floor_echo8_us_per_message: floors.socketpair8.us_per_message(),
        floor_echo8_rtt_p50_us: floors.socketpair8.round_trip_us(0.5),
        floor_echo8_rtt_p99_us: floors.socketpair8.round_trip_us(0.99),
        echo_of_socketpair_floor: echo_wall_gbps
            / floors.socketpair.wall_gbps(message_bytes).max(f64::MIN_POSITIVE),
        echo8_of_socketpair_floor: echo8_us_per_message
            / floors.socketpair8.us_per_message().max(f64::MIN_POSITIVE),
    };
    let rtt = crate::floor::Echoed { wall: small.wall, round_trips: small.round_trips };
    let report = ProbeReport {
        workers,
        spawn_hello_ms,
        echo_message_bytes: message_bytes,
        echo_messages,
        echo_gbps: (2 * message_bytes * echo_messages) as f64 / big.send_ns.max(1) as f64,
        echo_wall_gbps,
        echo8_messages,
        echo8_us_per_message,
        echo8_rtt_p50_us: rtt.round_trip_us(0.5),
        echo8_rtt_p99_us: rtt.round_trip_us(0.99),
        floor,
        transport: transport.info().name,
        started_per_job: transport.init_ns().is_some(),
        sizes,
        seconds: 0.0,
        ..generator()
    };
    Ok(ProbeReport { seconds: started.elapsed().as_secs_f64(), ..report })
}

/// The time budget of each headline echo.
const SECOND: Duration = Duration::from_secs(1);

/// Values the generator probe draws each time.
const GENERATED: usize = 10_000_000;

/// The generator's GB/s, warm and into fresh memory, and the memory's own fill rate, on every
/// core (a probe with these three figures and nothing else).
fn generator() -> ProbeReport {
    let gbps = |ns: u64| (GENERATED * 8) as f64 / ns.max(1) as f64;
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let mut warm = crate::memory::zeroed(GENERATED);
    crate::data::generate_into(1, &mut warm);
    let timed = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_nanos() as u64
    };
    let (mut hot, mut fresh, mut fill) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..5u64 {
        hot.push(timed(&mut || crate::data::generate_into(round, &mut warm)));
        fresh.push(timed(&mut || {
            drop(std::hint::black_box(crate::data::generate(round, GENERATED)))
        }));
        fill.push(timed(&mut || fill_all_cores(&mut warm, round as f64)));
    }
    ProbeReport {
        generate_gbps: gbps(median(hot)),
        generate_fresh_gbps: gbps(median(fresh)),
        floor_fill_gbps: gbps(median(fill)),
        ..ProbeReport::default()
    }
}

/// Writes `value` over `out` on a thread per core, as the generator shares its blocks.
fn fill_all_cores(out: &mut [f64], value: f64) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let share = out.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for part in out.chunks_mut(share) {
            scope.spawn(move || part.fill(std::hint::black_box(value)));
        }
    });
}

fn echo_pool(
    transport: &dyn Transport,
    worker_bin: &Path,
    count: usize,
    timeout: Duration,
    message_bytes: usize,
    ack: bool,
) -> Result<Box<dyn Pool>, RunError> {
    let spec = PoolSpec {
        worker_bin,
        count,
        handshake_timeout: timeout,
        inherit_fds: &|_| Vec::new(),
        frame_bytes: 0,
        places: None,
        // An echo is the message back with its header.
        max_frame: message_bytes as u64 + crate::transport::FRAME_SLACK,
    };
    let setup = |_| Setup {
        mode: if ack { ACK } else { ECHO }.to_string(),
        function: Function::Exp,
        work: 1,
        codec: CodecKind::RAW,
        extra: Vec::new(),
        prefetch: false,
        trace: false,
        frame_bytes: 0,
    };
    Ok(transport.start(&spec, &setup)?)
}

/// What one echo exchange took.
struct Echoed {
    /// Messages sent (and answered).
    messages: usize,
    /// From the first send to the last reply.
    wall: Duration,
    /// Inside sends, both sides, ns.
    send_ns: u64,
    /// Each message's round trip, in send order.
    round_trips: Vec<Duration>,
}

/// How an exchange goes: how many messages in flight, whether the worker echoes each one or
/// answers it with 8 bytes (the bytes then flow one way), and how many it sends: at least
/// `min`, at most `max`, and no more once `time` has passed since the first, so that a slow
/// link costs the probe seconds, not minutes (as the measurement plan budgets its runs).
#[derive(Clone, Copy, Debug)]
struct Exchange {
    window: usize,
    ack: bool,
    min: usize,
    max: usize,
    time: Duration,
}

impl Exchange {
    /// Exactly `messages` echoes, [`DEPTH`] in flight, whatever they take.
    fn fixed(messages: usize) -> Exchange {
        Exchange { window: DEPTH, ack: false, min: messages, max: messages, time: Duration::ZERO }
    }

    /// Echoes, [`DEPTH`] in flight, for about `time`: at least `min`, at most `max`.
    fn timed(min: usize, max: usize, time: Duration) -> Exchange {
        Exchange { window: DEPTH, ack: false, min, max, time }
    }
}

/// How long to wait for one echoed frame before calling the worker lost.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

/// The next frame from the echo worker; its end or silence is an error.
fn next_frame(pool: &mut dyn Pool) -> Result<crate::transport::Frame, RunError> {
    let lost = |message: String| RunError::Channel { what: "echo probe".into(), message };
    let deadline = Instant::now() + ECHO_TIMEOUT;
    // An exit can overtake the worker's last frame (the watchdog and the reader thread race):
    // after one, frames still in flight are drained before the worker is called lost.
    let mut ended: Option<String> = None;
    loop {
        if let Some(signal) = crate::interrupt::requested() {
            return Err(RunError::Interrupted { signal });
        }
        match pool.next_event(Duration::from_millis(50)) {
            Some(Event::Frame(_, frame)) => return Ok(frame),
            Some(Event::Exited { how, .. }) => ended = Some(how),
            Some(Event::Closed(_)) => {
                ended.get_or_insert_with(|| "hung up".into());
            }
            Some(Event::Refused(_, why)) => {
                ended.get_or_insert(why);
            }
            None => match ended {
                Some(how) => return Err(lost(format!("the echo worker {how}"))),
                None if Instant::now() > deadline => {
                    return Err(lost("no echo within 10 s".into()))
                }
                None => {}
            },
        }
    }
}

/// A message of `bytes` bytes, written in pieces so that a stop asked for while a big one is
/// made is honoured at once.
fn message(bytes: usize) -> Result<Vec<u8>, RunError> {
    const PIECE: usize = 16 << 20;
    let mut message = Vec::with_capacity(bytes);
    while message.len() < bytes {
        if crate::interrupt::requested().is_some() {
            return Err(crate::interrupt::interrupted());
        }
        let piece = PIECE.min(bytes - message.len());
        message.resize(message.len() + piece, 0x5A);
    }
    Ok(message)
}

/// Sends messages of `bytes` bytes to one echo worker as `how` says, `how.window` in flight.
/// The pool's reader thread drains replies, so a big send never waits on our reads.
fn echo(
    transport: &dyn Transport,
    worker_bin: &Path,
    bytes: usize,
    how: Exchange,
    timeout: Duration,
) -> Result<Echoed, RunError> {
    let window = how.window.max(1);
    let mut pool = echo_pool(transport, worker_bin, 1, timeout, bytes, how.ack)?;
    let send_err = |e: crate::error::LinkError| RunError::Channel {
        what: "echo send".into(),
        message: e.to_string(),
    };
    // Frames are handed to the transport and come back once sent: window + 1 buffers, made
    // (and faulted in) before the clock starts, carry every message.
    let mut spares: Vec<Vec<u8>> =
        (0..=window).map(|_| message(bytes)).collect::<Result<_, _>>()?;
    let start = Instant::now();
    let (mut received, mut send_ns, mut sends) = (0, 0u64, 0usize);
    let mut sent_at: Vec<Instant> = Vec::with_capacity(how.max.min(1 << 20));
    let mut round_trips = Vec::with_capacity(how.max.min(1 << 20));
    let mut take_sent = |pool: &mut dyn Pool, spares: &mut Vec<Vec<u8>>| {
        while let Some(done) = pool.sent() {
            done.result.map_err(send_err)?;
            send_ns += done.end_ns.saturating_sub(done.start_ns);
            sends += 1;
            spares.push(done.frame);
        }
        Ok::<_, RunError>(sends)
    };
    for i in 0..how.max {
        if i >= how.min.max(1) && start.elapsed() >= how.time {
            break;
        }
        if i >= window {
            received += next_frame(pool.as_mut())?.len();
            round_trips.push(sent_at[i - window].elapsed());
        }
        take_sent(pool.as_mut(), &mut spares)?;
        let frame = match spares.pop() {
            Some(frame) => frame,
            None => message(bytes)?,
        };
        sent_at.push(Instant::now());
        pool.send(0, frame).map_err(send_err)?;
    }
    let messages = sent_at.len();
    for sent in &sent_at[messages.saturating_sub(window)..] {
        received += next_frame(pool.as_mut())?.len();
        round_trips.push(sent.elapsed());
    }
    // Every reply is in, so every send has ended; its report may still be on its way.
    let reported = Instant::now() + Duration::from_secs(1);
    while take_sent(pool.as_mut(), &mut spares)? < messages && Instant::now() < reported {
        std::thread::sleep(Duration::from_micros(50));
    }
    let wall = start.elapsed();
    let reply = if how.ack { bytes.min(8) } else { bytes };
    if received != reply * messages {
        return Err(RunError::Channel {
            what: "echo probe".into(),
            message: format!("{received} bytes came back, {} expected", reply * messages),
        });
    }
    // The worker's send time comes last, once its channel closes.
    pool.close(0);
    let stats = next_frame(pool.as_mut())?;
    let worker_send_ns =
        stats.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).ok_or_else(
            || RunError::Channel {
                what: "echo probe".into(),
                message: "the worker did not report its send time".into(),
            },
        )?;
    pool.reap(0, Duration::from_secs(1));
    Ok(Echoed { messages, wall, send_ns: send_ns + worker_send_ns, round_trips })
}

/// The message sizes of the per-size probe, in bytes: 8, then powers of 4 from 16 to 4 MiB
/// (OSU's osu_latency and osu_bw go in powers of 2 over the same range).
pub const SIZES: [usize; 11] =
    [8, 16, 64, 256, 1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22];

/// The largest size `--sizes` takes, and how many.
pub const MAX_SIZE: usize = 64 << 20;
/// See [`MAX_SIZE`].
pub const MAX_SIZES: usize = 32;

/// Bytes the bandwidth probe keeps in flight at most: OSU's window of 64 messages, fewer
/// where 64 would pass this.
const WINDOW_BYTES: usize = 16 << 20;

/// Per message size, OSU's two point-to-point figures over `transport`: latency as
/// osu_latency takes it (one message in flight, there and back, half the round trip averaged)
/// and bandwidth as osu_bw does (a window of messages in flight one way; each answered here
/// by 8 bytes). Each figure gets a share of the time, not a count, so the probe fits the link.
fn per_size(
    transport: &dyn Transport,
    worker_bin: &Path,
    sizes: &[usize],
    timeout: Duration,
) -> Result<Vec<ProbeSize>, RunError> {
    let mut rows = Vec::with_capacity(sizes.len());
    for &bytes in sizes {
        let ping = Exchange {
            window: 1,
            ack: false,
            min: 5,
            max: 10_000,
            time: Duration::from_millis(150),
        };
        let lat = echo(transport, worker_bin, bytes, ping, timeout)?;
        let window = (WINDOW_BYTES / bytes).clamp(2, 64);
        let stream = Exchange {
            window,
            ack: true,
            min: 2 * window,
            max: 100_000,
            time: Duration::from_millis(250),
        };
        let bw = echo(transport, worker_bin, bytes, stream, timeout)?;
        let mut rtt: Vec<f64> = lat.round_trips.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        rtt.sort_unstable_by(f64::total_cmp);
        rows.push(ProbeSize {
            bytes,
            latency_us: lat.wall.as_secs_f64() * 1e6 / (2 * lat.messages) as f64,
            latency_p50_us: rtt.get(rtt.len() / 2).copied().unwrap_or(0.0) / 2.0,
            latency_messages: lat.messages,
            bandwidth_mbps: (bytes * bw.messages) as f64 / bw.wall.as_secs_f64().max(1e-9) / 1e6,
            bandwidth_messages: bw.messages,
            window,
        });
    }
    Ok(rows)
}

/// A transport's costs for the model ([`crate::costs::TransportCost`]): starting a pool of two
/// workers (a worker's share), a small message there and back, pipelined, and a byte beyond
/// it, from `samples` rounds of echoes of 8 bytes and of `bytes` bytes.
pub fn transport_costs(
    transport: &dyn Transport,
    worker_bin: &Path,
    bytes: usize,
    samples: usize,
    timeout: Duration,
) -> Result<crate::costs::TransportCost, RunError> {
    let (mut spawn, mut message, mut byte) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples.max(1) {
        let pool = echo_pool(transport, worker_bin, 2, timeout, 64, false)?;
        spawn.push(transport.init_ns().unwrap_or(pool.spawn_ns()) as f64 / 2.0 / 1e6);
        drop(pool);
        let (small, big) = (200, 12);
        let s = echo(transport, worker_bin, 8, Exchange::fixed(small), timeout)?;
        let b = echo(transport, worker_bin, bytes, Exchange::fixed(big), timeout)?;
        let per_message_ns = s.wall.as_nanos() as f64 / small as f64;
        message.push(per_message_ns / 1e3);
        let per_big_ns = b.wall.as_nanos() as f64 / big as f64;
        // Each big message crosses twice (there and back): a byte's one-way share.
        byte.push(((per_big_ns - per_message_ns) / (2.0 * bytes as f64)).max(0.0));
    }
    Ok(crate::costs::TransportCost {
        transport: transport.info().name.to_string(),
        spawn_ms: crate::costs::Figure::of(&spawn),
        message_us: crate::costs::Figure::of(&message),
        byte_ns: crate::costs::Figure::of(&byte),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codec_probe_measures_every_codec_at_every_size_and_items() {
        let p = codecs(&[3, 100]).unwrap();
        let count = CodecKind::all().count();
        assert_eq!(p.rows.len(), 3 * count, "two block sizes and the items");
        assert_eq!(p.memcpy.len(), 2);
        for row in &p.rows {
            assert!(row.encode_gbps > 0.0 && row.decode_gbps > 0.0, "{row:?}");
            assert!(
                row.encode_gbps_min <= row.encode_gbps && row.encode_gbps <= row.encode_gbps_max
            );
            assert!(row.bytes_per_value >= 1.0, "{row:?}");
        }
        let raw = p.rows.iter().find(|r| r.codec == CodecKind::RAW && r.values == 100).unwrap();
        assert_eq!(raw.bytes_per_value, 8.0);
        assert!(p.rows.iter().any(|r| r.shape == "items" && r.values == CODEC_ITEMS));
    }
}

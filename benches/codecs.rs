//! Codec micro-benchmarks, in-process: each codec's block encode and decode of 1 k, 100 k and
//! 10 M f64 (bytes per second), and item-by-item encode of 100 k values. Short samples (0.3 s
//! warm-up, 1 s of measurement, 10 samples), so every codec fits in about two minutes;
//! `coordinator probe --codecs` gives the same figures in seconds.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipcmap::codec::CodecKind;
use std::hint::black_box;

fn blocks(c: &mut Criterion) {
    for n in [1_000usize, 100_000, 10_000_000] {
        let values = ipcmap_benches::input(n);
        let mut group = c.benchmark_group(format!("block/{n}"));
        group.throughput(Throughput::Bytes(8 * n as u64));
        for kind in CodecKind::all() {
            let codec = kind.codec();
            let mut bytes = Vec::with_capacity(9 * n + 16);
            group.bench_function(BenchmarkId::new("encode", kind), |b| {
                b.iter(|| {
                    bytes.clear();
                    codec.encode_block(black_box(&values), &mut bytes).expect("encode");
                })
            });
            let mut out = vec![0.0; n];
            group.bench_function(BenchmarkId::new("decode", kind), |b| {
                b.iter(|| codec.decode_block_into(black_box(&bytes), &mut out).expect("decode"))
            });
        }
        group.finish();
    }
}

fn items(c: &mut Criterion) {
    let n = 100_000;
    let values = ipcmap_benches::input(n);
    let mut group = c.benchmark_group(format!("item/{n}"));
    group.throughput(Throughput::Bytes(8 * n as u64));
    for kind in CodecKind::all() {
        let codec = kind.codec();
        let mut bytes = Vec::with_capacity(9 * n);
        group.bench_function(BenchmarkId::new("encode", kind), |b| {
            b.iter(|| {
                bytes.clear();
                for &x in black_box(&values) {
                    codec.encode_item(x, &mut bytes).expect("encode");
                }
            })
        });
        group.bench_function(BenchmarkId::new("decode", kind), |b| {
            b.iter(|| {
                let mut at = 0;
                let mut sum = 0.0;
                while at < bytes.len() {
                    let (x, used) = codec.decode_item(&bytes[at..]).expect("decode");
                    sum += x;
                    at += used;
                }
                sum
            })
        });
    }
    group.finish();
}

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = short();
    targets = blocks, items
}
criterion_main!(benches);

//! Kernel micro-benchmarks: each function over 1 M f64 (elements per second), as a slice and
//! element by element (the item strategy's worker loop).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipcmap::kernel::{self, Function};
use std::hint::black_box;

fn kernels(c: &mut Criterion) {
    let n = 1_000_000;
    let input: Vec<f64> = ipcmap_benches::input(n).iter().map(|x| x + 0.5).collect();
    let mut output = vec![0.0; n];
    let mut group = c.benchmark_group("kernel/1M");
    group.throughput(Throughput::Elements(n as u64));
    for f in Function::ALL {
        group.bench_function(BenchmarkId::new("slice", f), |b| {
            b.iter(|| kernel::apply(f, black_box(&input), &mut output))
        });
        group.bench_function(BenchmarkId::new("one_by_one", f), |b| {
            b.iter(|| {
                for (y, &x) in output.iter_mut().zip(black_box(&input)) {
                    *y = kernel::apply_one(f, x);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);

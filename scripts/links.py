#!/usr/bin/env python3
"""What a network link changes, measured: the same MPI job (rank 0 on h1, one worker rank on
each of h2 and h3) over links of different shapes, on the namespace cluster of
scripts/cluster.sh, beside the paper estimate the README used to give.

    sudo scripts/links.py [--n 10000000] [--repeat 5] [--coordinator target/release/coordinator]

For each link: the 8-byte MPI round trip and the echo GB/s (`coordinator probe --transport
mpi`), then item, split and scatterv, median wall ms of --repeat runs, every one verified.
Rows:
  - one namespace: every rank in h1, TCP over its loopback (no bridge, no veth);
  - bridge: the three hosts over the bridge, unshaped;
  - 10 Gb/s + 100 us and 1 Gb/s + 1 ms: rate by tbf on both ends of every veth, one-way delay
    by netem where the kernel has it (said in the row where it does not; the rate still holds).
Two estimates stand beside split: the README's old arithmetic (the bytes split moved both ways,
from its report, at the link's nominal rate, plus the sequential run) and the full-duplex one
(only the larger direction at that rate: a link carries each way at its full rate at once).

Needs root, iproute2 (tc), mpirun and a coordinator built with `--features mpi`. The cluster is
made for this run (prefix ipcmap-links-) and removed at the end, whatever happens.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
PREFIX = "ipcmap-links-"
ENV = dict(os.environ, CLUSTER_PREFIX=PREFIX, CLUSTER_STATE="/run/" + PREFIX + "cluster",
           CLUSTER_SLOTS="1 1 1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
HOSTS = ["h1", "h2", "h3"]

# name, rate in bit/s (None: unshaped), one-way delay in microseconds
LINKS = [
    ("bridge, unshaped", None, 0),
    ("10 Gb/s + 100 µs", 10e9, 100),
    ("1 Gb/s + 1 ms", 1e9, 1000),
]


def sh(*cmd, check=True):
    return subprocess.run(cmd, env=ENV, check=check, capture_output=True, text=True)


def on(host, *cmd):
    """`cmd` on `host`: in its namespace, with its hostname."""
    return ["ip", "netns", "exec", PREFIX + host, "unshare", "--uts", "/bin/sh", "-c",
            'hostname "$1"; shift; exec "$@"', "x", host, *cmd]


def has_netem():
    probe = PREFIX + "h1"
    ok = sh("ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
            "delay", "1us", check=False).returncode == 0
    if ok:
        sh("ip", "netns", "exec", probe, "tc", "qdisc", "del", "dev", "lo", "root", check=False)
    return ok


def ends():
    """Both ends of every host's veth: (namespace, device)."""
    for h in HOSTS:
        yield PREFIX + h, "mhnet"
        yield PREFIX + "sw", "port-" + h


def shape(rate, delay_us, netem):
    for ns, dev in ends():
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)
        if rate is None:
            continue
        # A burst of at least one timer tick's worth of bytes at the rate (HZ up to 1000:
        # rate / 8 / 250 is safe), so tbf can reach the rate.
        burst = max(int(rate / 8 / 250), 64 * 1024)
        tbf = ["tbf", "rate", "%dbit" % rate, "burst", str(burst), "latency", "50ms"]
        if netem and delay_us:
            # Half the one-way delay on each end of the veth.
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "handle",
               "1:", "netem", "delay", "%dus" % (delay_us // 2), "limit", "100000")
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "parent", "1:1",
               "handle", "10:", *tbf)
        else:
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", *tbf)


def mpirun(args, across):
    if across:
        line = shlex.split(sh(CLUSTER, "mpirun").stdout)
    else:
        line = ["mpirun", "--oversubscribe", "--mca", "pml", "ob1", "--mca", "btl", "self,tcp",
                "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]
    cmd = on("h1", *line, "-np", "3", COORDINATOR, "--transport", "mpi", *args)
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        sys.exit("links.py: %s failed: %s" % (" ".join(args), out.stderr.strip()[-2000:]))
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def measure(across, n, repeat):
    probe = mpirun(["probe", "--format", "json"], across)[0]
    reports = mpirun(["--mode", "sequential,item,split,scatterv", "--n", str(n), "--repeat",
                      str(repeat), "--format", "json"], across)
    for r in reports:
        if r["mode"] != "sequential" and not r.get("verified"):
            sys.exit("links.py: %s was not verified" % r["mode"])
    return probe, {r["mode"]: r for r in reports}


def main():
    global COORDINATOR
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--coordinator", default=os.path.join(ROOT, "target", "release", "coordinator"))
    a = ap.parse_args()
    COORDINATOR = os.path.abspath(a.coordinator)
    if os.geteuid() != 0:
        sys.exit("links.py: needs root (network namespaces and tc)")
    up = sh(CLUSTER, "up", check=False)
    if up.returncode != 0:
        sys.exit("links.py: " + up.stderr.strip())
    try:
        netem = has_netem()
        rows = [("one namespace, TCP", None, 0, False)]
        rows += [(name, rate, delay, True) for name, rate, delay in LINKS]
        print("n = %d, 3 ranks (rank 0 on h1, one worker rank on h2 and on h3), median of %d "
              "runs, every run verified%s" % (a.n, a.repeat, "" if netem else
              "; this kernel has no netem, so links are shaped in rate only (tbf), not delayed"))
        print()
        print("| link (8-byte MPI round trip, echo GB/s) | item | split | scatterv | sequential "
              "| split, paper estimate (both ways / rate) | split, full duplex (larger way / rate) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, rate, delay, across in rows:
            shape(rate if across else None, delay, netem)
            probe, r = measure(across, a.n, a.repeat)
            label = name if netem or not delay else name + " (no delay)"
            rtt = probe.get("echo8_rtt_p50_us") or 2 * probe["echo8_us_per_message"]
            split = r["split"]
            seq = r["sequential"]["wall_ms"]
            both, larger = "-", "-"
            if rate:
                sent, received = split["bytes_sent"], split["bytes_received"]
                both = "%.0f ms" % ((sent + received) * 8 / rate * 1e3 + seq)
                larger = "%.0f ms" % (max(sent, received) * 8 / rate * 1e3 + seq)
            print("| %s (%.0f µs, %.2f GB/s) | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %s | %s |" % (
                label, rtt, probe["echo_wall_gbps"], r["item"]["wall_ms"], split["wall_ms"],
                r["scatterv"]["wall_ms"], seq, both, larger))
            sys.stdout.flush()
    finally:
        shape(None, 0, False)
        sh(CLUSTER, "down", check=False)


if __name__ == "__main__":
    main()

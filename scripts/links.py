#!/usr/bin/env python3
"""What a network link changes, measured: the same MPI job (rank 0 on h1, one worker rank on
each of h2 and h3) over links of different shapes, on the namespace cluster of
scripts/cluster.sh, beside the paper estimate the README used to give.

    sudo scripts/links.py [--n 10000000] [--repeat 5] [--coordinator target/release/coordinator]

For each link: what was applied (rate, one-way delay and how), the measured 8-byte MPI round
trip (one message in flight, as osu_latency: `coordinator probe --transport mpi`), the echo
GB/s and how long the probe took, then item, split and scatterv, median wall ms of --repeat
runs, every one verified. Rows:
  - one namespace: every rank in h1, TCP over its loopback (no bridge, no veth);
  - bridge: the three hosts over the bridge, unshaped;
  - where the kernel has no netem, the relay alone (no delay): its own cost, measured;
  - 10 Gb/s + 100 us and 1 Gb/s + 1 ms: rate by tbf on both ends of every veth; one-way delay
    by netem where the kernel has it, else by scripts/delay_relay.c (built here with cc): each
    host's veth is taken off the bridge and a relay holds every frame between it and a TAP
    device on the bridge for half the delay, each way, so host to host is the whole delay.
    Jumbo frames (MTU 9000) and offloads off on the relayed links, so frames stay whole.
Where a link is shaped, the cost model's extrapolation for it stands in brackets beside item,
split and scatterv (`coordinator predict --transport mpi --link-gbps --link-us`: this machine's
TCP costs, rank 0's link carrying every byte). Two estimates stand beside split: the README's old arithmetic (the bytes split moved both ways,
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
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
PREFIX = "ipcmap-links-"
ENV = dict(os.environ, CLUSTER_PREFIX=PREFIX, CLUSTER_STATE="/run/" + PREFIX + "cluster",
           CLUSTER_SLOTS="1 1 1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
HOSTS = ["h1", "h2", "h3"]

# name, rate in bit/s (None: unshaped), one-way delay in microseconds (None: no relay)
LINKS = [
    ("bridge, unshaped", None, None),
    ("relay alone, no delay", None, 0),
    ("10 Gb/s + 100 µs", 10e9, 100),
    ("1 Gb/s + 1 ms", 1e9, 1000),
]
RELAY_SOURCE = os.path.join(ROOT, "scripts", "delay_relay.c")


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
        if rate is None and not (netem and delay_us):
            continue
        # A burst of at least one timer tick's worth of bytes at the rate (HZ up to 1000:
        # rate / 8 / 250 is safe), so tbf can reach the rate.
        tbf = []
        if rate is not None:
            burst = max(int(rate / 8 / 250), 64 * 1024)
            tbf = ["tbf", "rate", "%dbit" % rate, "burst", str(burst), "latency", "50ms"]
        if netem and delay_us:
            # Half the one-way delay on each end of the veth.
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "handle",
               "1:", "netem", "delay", "%dus" % (delay_us // 2), "limit", "100000")
            if tbf:
                sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "parent", "1:1",
                   "handle", "10:", *tbf)
        elif tbf:
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", *tbf)


class Relays:
    """Without netem: a delay relay on each host's link, between the bridge's end of its veth
    (taken off the bridge) and a TAP device put on the bridge in its place."""

    def __init__(self, binary):
        self.binary = binary
        self.running = []

    def up(self, delay_us):
        sw = PREFIX + "sw"
        for h in HOSTS:
            port, tap, ns = "port-" + h, "d-" + h, PREFIX + h
            for where, dev in ((ns, "mhnet"), (sw, port)):
                sh("ip", "netns", "exec", where, "ethtool", "-K", dev, "tx", "off", "tso",
                   "off", "gso", "off", "gro", "off", check=False)
                sh("ip", "-n", where, "link", "set", dev, "mtu", "9000")
            sh("ip", "-n", sw, "link", "set", port, "nomaster")
            sh("ip", "-n", sw, "tuntap", "add", "mode", "tap", "name", tap)
            sh("ip", "-n", sw, "link", "set", tap, "mtu", "9000", "master", "br0", "up")
            # Half the one-way delay each way: a frame host to host passes two relays.
            relay = subprocess.Popen(["ip", "netns", "exec", sw, self.binary, port, tap,
                                      str(delay_us // 2)], stdout=subprocess.PIPE, text=True)
            self.running.append(relay)
            if relay.stdout.readline().strip() != "ready":
                raise SystemExit("links.py: the delay relay for %s did not start" % h)
        sh("ip", "-n", sw, "link", "set", "br0", "mtu", "9000")

    def down(self):
        sw = PREFIX + "sw"
        for relay in self.running:
            relay.kill()
            relay.wait()
        if self.running:
            for h in HOSTS:
                sh("ip", "-n", sw, "link", "del", "d-" + h, check=False)
                sh("ip", "-n", sw, "link", "set", "port-" + h, "master", "br0", check=False)
        self.running = []


def build_relay(folder):
    binary = os.path.join(folder, "delay_relay")
    cc = subprocess.run(["cc", "-O2", "-o", binary, RELAY_SOURCE],
                        capture_output=True, text=True)
    if cc.returncode != 0:
        raise SystemExit("links.py: building the delay relay failed: " + cc.stderr.strip())
    return binary


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


def predicted(rate, delay_us, n):
    """The cost model's extrapolation for hosts joined by this link (`coordinator predict
    --transport mpi --link-gbps --link-us`, this machine's TCP costs), ms a strategy."""
    if rate is None:
        return {}
    out = subprocess.run([COORDINATOR, "predict", "--transport", "mpi", "--mode", "item,split,scatterv",
                          "--n", str(n), "--workers", "2", "--link-gbps", "%g" % (rate / 1e9),
                          "--link-us", str(delay_us or 0), "--format", "json"],
                         capture_output=True, text=True, env=ENV)
    if out.returncode != 0:
        sys.exit("links.py: predict failed: " + out.stderr.strip())
    return {r["mode"]: r["predicted_wall_ms"] for r in map(json.loads, out.stdout.splitlines())}


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
    folder = tempfile.TemporaryDirectory(prefix="ipcmap-links-")
    relays = None
    try:
        netem = has_netem()
        if not netem:
            relays = Relays(build_relay(folder.name))
        rows = [("one namespace, TCP", None, None, False)]
        rows += [(name, rate, delay, True) for name, rate, delay in LINKS
                 if not (netem and delay == 0)]
        print("n = %d, 3 ranks (rank 0 on h1, one worker rank on h2 and on h3), median of %d "
              "runs, every run verified; delay by %s" % (a.n, a.repeat, "netem" if netem else
              "scripts/delay_relay.c (this kernel has no netem)"))
        print()
        print("| link: rate, one-way delay applied | 8-byte round trip | echo GB/s | probe s "
              "| item (predicted) | split (predicted) | scatterv (predicted) | sequential "
              "| split, paper estimate (both ways / rate) | split, full duplex (larger way / rate) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, rate, delay, across in rows:
            shape(rate if across else None, delay, netem)
            if relays and delay is not None:
                relays.up(delay)
            try:
                probe, r = measure(across, a.n, a.repeat)
            finally:
                if relays:
                    relays.down()
            rtt = 2 * probe["sizes"][0]["latency_us"]
            model = predicted(rate if across else None, delay, a.n)

            def cell(mode):
                p = model.get(mode)
                return "%.0f ms%s" % (r[mode]["wall_ms"], "" if p is None else " (%.0f)" % p)
            split = r["split"]
            seq = r["sequential"]["wall_ms"]
            both, larger = "-", "-"
            if rate:
                sent, received = split["bytes_sent"], split["bytes_received"]
                both = "%.0f ms" % ((sent + received) * 8 / rate * 1e3 + seq)
                larger = "%.0f ms" % (max(sent, received) * 8 / rate * 1e3 + seq)
            applied = "%s, %s" % (("%g Gb/s" % (rate / 1e9)) if rate else "unshaped",
                                  "no delay" if not delay else "%d µs (%s)" % (
                                      delay, "netem" if netem else "relay"))
            print("| %s: %s | %.0f µs | %.2f | %.1f | %s | %s | %s | %.0f ms | %s "
                  "| %s |" % (name, applied, rtt, probe["echo_wall_gbps"], probe["seconds"],
                              cell("item"), cell("split"), cell("scatterv"), seq, both, larger))
            sys.stdout.flush()
    finally:
        if relays:
            relays.down()
        shape(None, 0, False)
        sh(CLUSTER, "down", check=False)
        folder.cleanup()


if __name__ == "__main__":
    main()

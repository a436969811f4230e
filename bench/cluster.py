#!/usr/bin/env python3
"""Calls per second through Kamailio with one and with two OnCall instances (issue 10, docs/deploy.md).

Kamailio runs docs/deploy/kamailio.cfg as shipped (only its listen address and dispatcher list are given with
-A, as tests/e2e_cluster.rs does); behind it 1, then 2 release-build instances (`[instance] id` i1, i2) share a
fresh PostgreSQL database. SIPp places short calls (tests/scenarios/uac_call.xml: INVITE, 200, ACK, 2 s, BYE)
through Kamailio at increasing rates, each rate for --secs seconds; for every rate it prints SIPp's own figures
(successful and failed calls), the rate the calls were answered at and the INVITE -> 200 times of the calls
(-trace_rtt), how the calls were split between the instances (their /metrics) and the CPU of each instance, of Kamailio, of SIPp and
of PostgreSQL (% of one core). The ladder stops at the first rate with a failed call or set up at less than 95 % of the rate
asked for; the highest rate before it is the result. Nothing here asserts a threshold.

  bash scripts/with-postgres.sh python3 bench/cluster.py            # 1 then 2 instances
  bash scripts/with-postgres.sh python3 bench/cluster.py --instances 2 --rates 50,100 --secs 5

It needs ONCALL_TEST_POSTGRES_URL (scripts/with-postgres.sh exports it), `sipp` (sip-tester), `kamailio`, `psql`
and $CARGO_TARGET_DIR/release/oncall (or target/release/oncall); it binds only 127.0.0.1.
"""
import argparse, os, resource, signal, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, free_port, metrics, proc_cpu_seconds, sipp_final_stats  # noqa: E402


def binary():
    path = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "oncall")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: run `cargo build --release -p oncall --bin oncall` first")
    return path


def fresh_database(n):
    """A new, empty database in the cluster of ONCALL_TEST_POSTGRES_URL; its URL."""
    base = os.environ.get("ONCALL_TEST_POSTGRES_URL")
    if not base:
        sys.exit("ONCALL_TEST_POSTGRES_URL is unset: run under scripts/with-postgres.sh")
    name = f"oncall_bench_cluster_{os.getpid()}_{n}"
    subprocess.run(["psql", base, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", f"CREATE DATABASE {name}"], check=True)
    return base.rsplit("/", 1)[0] + "/" + name


class Instance:
    """One `oncall serve` on the shared database, with its own ports and RTP range."""

    def __init__(self, tmp, ident, database_url, rtp_min):
        self.dir = os.path.join(tmp, ident)
        os.makedirs(self.dir, exist_ok=True)
        self.sip, port = free_port(), free_port()
        self.http = f"127.0.0.1:{port}"
        cfg = os.path.join(self.dir, "oncall.toml")
        with open(cfg, "w") as f:
            f.write(f"""[instance]
id = "{ident}"
[sip]
listen_udp = "127.0.0.1:{self.sip}"
listen_tcp = "127.0.0.1:{self.sip}"
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_min + 9998}
calls_per_second_per_source = 0  # every call comes from Kamailio's one address (as in docs/deploy.md)
[http]
listen = "{self.http}"
[storage]
database_url = "{database_url}"
data_dir = "{self.dir}/data"
sounds_dir = "{ROOT}/sounds"
[paging]
enabled = false
[log]
level = "warn"
""")
        self.log = open(os.path.join(self.dir, "oncall.log"), "w")
        self.proc = subprocess.Popen([binary(), "--config", cfg, "serve"], stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                import urllib.request
                urllib.request.urlopen(f"http://{self.http}/healthz", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        sys.exit(f"instance {ident} did not become healthy; see {self.log.name}")

    def calls(self):
        return metrics(self.http).get("oncall_calls_received_total", 0.0)

    def cpu(self):
        return proc_cpu_seconds(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Kamailio:
    """Kamailio on docs/deploy/kamailio.cfg as shipped, dispatching to `instances`; its own process group."""

    def __init__(self, tmp, instances):
        self.dir = os.path.join(tmp, "kamailio")
        os.makedirs(self.dir, exist_ok=True)
        lst = os.path.join(self.dir, "dispatcher.list")
        with open(lst, "w") as f:
            f.writelines(f"1 sip:127.0.0.1:{i.sip} 0 0\n" for i in instances)
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "kamailio.log"), "w")
        self.proc = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-m", "256", "-M", "16", "-w", self.dir, "-Y", self.dir,
             "-f", os.path.join(ROOT, "docs/deploy/kamailio.cfg"),
             "-A", f"LISTEN=udp:127.0.0.1:{self.port}", "-A", f'DISPATCHER_LIST="{lst}"'],
            stdout=self.log, stderr=self.log, start_new_session=True)
        self.wait_ready()

    def wait_ready(self):
        """Until the configuration's own answer to a keepalive OPTIONS (no user part) comes back."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        port = s.getsockname()[1]
        for n in range(50):
            a = f"127.0.0.1:{self.port}"
            probe = (f"OPTIONS sip:{a} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKready{n}\r\n"
                     f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=r{n}\r\nTo: <sip:{a}>\r\n"
                     f"Call-ID: ready{n}@bench\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
            s.sendto(probe.encode(), ("127.0.0.1", self.port))
            try:
                if s.recv(2048).startswith(b"SIP/2.0 200"):
                    return
            except socket.timeout:
                pass
            if self.proc.poll() is not None:
                break
        self.stop()
        sys.exit(f"kamailio did not answer; see {self.log.name}")

    def cpu(self):
        """CPU seconds of all Kamailio processes (its process group)."""
        total = 0.0
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.getpgid(int(d)) == self.proc.pid:
                        total += proc_cpu_seconds(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        return total

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass


def postgres_cpu():
    """CPU seconds of every `postgres` process on the machine (the cluster of scripts/with-postgres.sh, and any
    other one running: the figure is an upper bound then)."""
    total = 0.0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == "postgres":
                        total += proc_cpu_seconds(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return total


def percentile(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def step(tmp, kam, instances, rate, secs):
    """One rate for `secs` seconds; a dict of figures."""
    work = tempfile.mkdtemp(prefix=f"rate{rate}-", dir=tmp)
    total = int(rate * secs)
    stat = os.path.join(work, "stat.csv")
    cmd = ["sipp", f"127.0.0.1:{kam.port}", "-sf", os.path.join(ROOT, "tests/scenarios/uac_call.xml"), "-s", "oncall",
           "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(free_port()), "-mp", str(50000 + free_port() % 5000 * 2),
           "-r", str(rate), "-m", str(total), "-l", str(max(20, rate * 6)), "-nostdin",
           "-trace_stat", "-stf", stat, "-fd", "1", "-trace_rtt", "-rtt_freq", "1", "-trace_err",
           "-max_socket", "65000", "-timeout", f"{int(secs + 40)}s", "-timeout_error"]
    before = [(i.calls(), i.cpu()) for i in instances]
    kam_cpu, pg_cpu, t0 = kam.cpu(), postgres_cpu(), time.time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "sipp.err"), "w"))
    elapsed = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) / elapsed * 100.0
    s = sipp_final_stats(stat) if os.path.exists(stat) else {}
    rtt, sent = [], []  # INVITE -> 200 (ms, SIPp's clock: whole ms), when each call's answer came (ms)
    for name in os.listdir(work):
        if name.endswith("_rtt.csv"):
            with open(os.path.join(work, name)) as f:
                for line in f.readlines()[1:]:
                    try:
                        at, ms = line.split(";")[:2]
                        sent.append(float(at))
                        rtt.append(float(ms))
                    except (IndexError, ValueError):
                        pass
    # The rate the calls were really set up at (SIPp's CallRate counts the last calls' 2 s too).
    achieved = (len(sent) - 1) / ((max(sent) - min(sent)) / 1000.0) if len(sent) > 1 and max(sent) > min(sent) else 0.0
    return {
        "rate": rate,
        "total": total,
        "ok": int(s.get("SuccessfulCall(C)", 0)),
        "failed": int(s.get("FailedCall(C)", 0)),
        "achieved": achieved,
        "p50": percentile(rtt, 0.5),
        "p99": percentile(rtt, 0.99),
        "max": max(rtt) if rtt else float("nan"),
        "split": [int(i.calls() - b[0]) for i, b in zip(instances, before)],
        "cpu": [100.0 * (i.cpu() - b[1]) / elapsed for i, b in zip(instances, before)],
        "kam_cpu": 100.0 * (kam.cpu() - kam_cpu) / elapsed,
        "sipp_cpu": sipp_cpu,
        "pg_cpu": 100.0 * (postgres_cpu() - pg_cpu) / elapsed,
        "work": work,
    }


def ladder(n, rates, secs, tmp):
    url = fresh_database(n)
    instances = []
    kam = None
    try:
        for k in range(n):
            instances.append(Instance(tmp, f"i{k + 1}", url, 20000 + 10000 * k))
        kam = Kamailio(tmp, instances)
        time.sleep(3)  # the first OPTIONS probes (every 2 s) mark the instances up
        print(f"== {n} instance(s) behind Kamailio, PostgreSQL {url.rsplit('/', 1)[1]} ==", flush=True)
        print("  rate/s  calls  ok     failed  achieved/s  INVITE->200 p50 / p99 / max ms   split        CPU % (instances | kamailio | sipp | postgres)")
        best = None
        results = []
        for rate in rates:
            r = step(tmp, kam, instances, rate, secs)
            results.append(r)
            print(f"  {rate:6}  {r['total']:5}  {r['ok']:5}  {r['failed']:6}  {r['achieved']:10.1f}  "
                  f"{r['p50']:8.1f} / {r['p99']:6.1f} / {r['max']:7.1f}      {'/'.join(map(str, r['split'])):11}  "
                  f"{' '.join(f'{c:.0f}' for c in r['cpu'])} | {r['kam_cpu']:.0f} | {r['sipp_cpu']:.0f} | {r['pg_cpu']:.0f}", flush=True)
            # Sustained: every call succeeded and they were set up at (nearly) the rate asked for.
            if r["failed"] or r["ok"] < r["total"] or r["achieved"] < 0.95 * rate:
                break
            best = r
            time.sleep(2)
        print(f"  highest rate sustained (no failed call, >= 95 % of the rate): {best['rate'] if best else 'none'}/s", flush=True)
        return best, results
    finally:
        if kam:
            kam.stop()
        for i in instances:
            i.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", default="1,2", help="instance counts to measure, e.g. 1,2")
    ap.add_argument("--rates", default="50,100,200,400,600,800,1000,1300,1600,2000", help="call rates to climb (calls per second)")
    ap.add_argument("--secs", type=float, default=8, help="seconds of calls at each rate")
    args = ap.parse_args()
    for tool in ["sipp", "kamailio", "psql"]:
        if subprocess.run(["which", tool], stdout=subprocess.DEVNULL).returncode:
            sys.exit(f"{tool} not found")
    tmp = tempfile.mkdtemp(prefix="oncall-bench-cluster-")
    print(f"work dir {tmp}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)
    for n in [int(x) for x in args.instances.split(",")]:
        ladder(n, [int(x) for x in args.rates.split(",")], args.secs, tmp)

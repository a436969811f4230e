#!/usr/bin/env python3
"""OnCall soak: SIPp keeps N IVR calls with recording up for a chosen time; this script watches OnCall's resources.

Every call (bench/scenarios/ivr_message.xml) dials in, presses 1, speaks ~7 s of PCMA after the tone, presses #
and waits for OnCall's goodbye and BYE, so each one leaves a WAV and a row in the call log. While the calls run,
every --interval seconds the script samples the server's RSS (/proc/PID/status VmRSS), open descriptors
(/proc/PID/fd), threads (/proc/PID/status Threads), the SQLite database size (oncall.db + its WAL) and SIPp's
running/successful/failed call counts. When the time is up SIPp stops placing calls, the calls in progress end,
and OnCall is stopped with SIGTERM. Then it checks:

  * SIPp counted 0 failed calls (and at least one successful one);
  * every call SIPp placed (Call-ID `<n>-<sipp pid>@127.0.0.1`, n = 1..total) has its row in `calls`, ended, with
    a recording path, and that WAV is a valid 16-bit PCM RIFF file whose sizes match its length and whose length
    matches the row's `recording_duration_ms`; each recording has its row in `recordings`;
  * `oncall recordings verify` is clean.

It reports the least-squares slopes of RSS (KiB/min) and descriptors (fds/min) over the samples after the warm-up
(--warmup; default a fifth of the run, at least 30 s and at most 5 min) while SIPp was still placing calls, writes
the samples as CSV and an SVG plot of RSS and descriptors over time, prints a summary and exits 1 when a check
failed (or a slope is above --max-rss-slope / --max-fd-slope when those are given).

  bench/soak.py --calls 200 --minutes 30 --csv docs/soak-samples.csv --svg docs/soak-rss.svg
  bench/soak.py --calls 20 --seconds 60 --interval 5 --binary target/debug/oncall     # the test suite's version

  bench/soak.py --calls 200 --minutes 20 --wrap "heaptrack -o /var/tmp/oncall-heap"   # heap profile of the run

--wrap runs the server under another command (heaptrack, `env MALLOC_ARENA_MAX=2`, ...); RSS, descriptors and
SIGTERM then go to the server process itself, not to the wrapper. Server start-up, /proc readers and SIPp's
statistics file come from bench/run.py. Without --binary it uses
$CARGO_TARGET_DIR/release/oncall (or target/release/oncall) and builds it first when missing (or with --build).
Binds only 127.0.0.1.
"""
import argparse, csv, os, re, shutil, signal, sqlite3, struct, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True  # importing run.py must not leave bench/__pycache__ behind
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: free_port, start_oncall, proc_rss_kib, metrics, sipp_final_stats)

ROOT = bench.ROOT
SCENARIO = os.path.join(ROOT, "bench/scenarios/ivr_message.xml")
# One call of the scenario lasts about 22 s (17 s scripted, OnCall's prompts and goodbye); used to pick SIPp's rate.
CALL_SECS = 22.0


# ---------------------------------------------------------------------------------------------------------------
# The server binary

def release_binary():
    return os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "oncall")


def ensure_binary(args):
    """The binary to run. bench.start_oncall always runs $CARGO_TARGET_DIR/release/oncall, so another binary
    (--binary, e.g. the test suite's debug build) is reached through a symlink in a directory of that shape."""
    if args.binary:
        return os.path.abspath(args.binary)
    path = release_binary()
    if args.build or not os.path.exists(path):
        print(f"building {path} (cargo build --release -p oncall --bin oncall)", flush=True)
        subprocess.run(["cargo", "build", "--release", "-p", "oncall", "--bin", "oncall"], cwd=ROOT, check=True)
    return path


def start_server(tmp, binary, args):
    shim = os.path.join(tmp, "bin")
    os.makedirs(os.path.join(shim, "release"), exist_ok=True)
    os.symlink(binary, os.path.join(shim, "release", "oncall"))
    saved = os.environ.get("CARGO_TARGET_DIR")
    os.environ["CARGO_TARGET_DIR"] = shim
    try:
        return bench.start_oncall(tmp, args)
    finally:
        if saved is None:
            del os.environ["CARGO_TARGET_DIR"]
        else:
            os.environ["CARGO_TARGET_DIR"] = saved


# ---------------------------------------------------------------------------------------------------------------
# Sampling

def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def sipp_counts(stat_path):
    """SIPp's running totals from the last row of its statistics file (written every second)."""
    if not os.path.exists(stat_path):
        return {}
    try:
        s = bench.sipp_final_stats(stat_path)
    except (OSError, IndexError, csv.Error):
        return {}

    def num(key):
        try:
            return int(float(s.get(key, 0) or 0))
        except ValueError:
            return 0

    return {"created": num("TotalCallCreated"), "current": num("CurrentCall"),
            "successful": num("SuccessfulCall(C)"), "failed": num("FailedCall(C)")}


FIELDS = ["t_s", "phase", "rss_kib", "fds", "threads", "db_bytes", "wal_bytes", "oncall_calls",
          "sipp_created", "sipp_current", "sipp_successful", "sipp_failed"]


def sample(t0, phase, pid, db, http, stat_path):
    m = bench.metrics(http)
    s = sipp_counts(stat_path)
    return {"t_s": round(time.time() - t0, 1), "phase": phase, "rss_kib": bench.proc_rss_kib(pid),
            "fds": open_fds(pid), "threads": proc_status(pid, "Threads"), "db_bytes": file_size(db),
            "wal_bytes": file_size(db + "-wal"), "oncall_calls": int(m.get("oncall_media_calls", 0)),
            "sipp_created": s.get("created", 0), "sipp_current": s.get("current", 0),
            "sipp_successful": s.get("successful", 0), "sipp_failed": s.get("failed", 0)}


def slope_per_min(points):
    """Least-squares slope of (seconds, value) points, per minute; None with fewer than 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return 60.0 * sxy / sxx


# ---------------------------------------------------------------------------------------------------------------
# Checks after the run

def wav_problem(path, duration_ms):
    """None when `path` is a 16-bit PCM WAV whose RIFF and data sizes match the file and whose length is
    `duration_ms`; otherwise what is wrong."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        return f"cannot read: {e}"
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return "no RIFF/WAVE header"
    riff_size = struct.unpack_from("<I", head, 4)[0]
    if riff_size != size - 8:
        return f"RIFF size {riff_size} but file has {size - 8} bytes after it"
    pos, fmt = 12, None
    while pos + 8 <= len(head):
        cid, clen = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if cid == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", head, pos + 8)
        elif cid == b"data":
            if fmt is None or fmt[0] != 1 or fmt[5] != 16:
                return f"not 16-bit PCM: fmt {fmt}"
            if clen != size - (pos + 8):
                return f"data size {clen} but {size - pos - 8} bytes follow"
            if clen == 0:
                return "no audio"
            frames = clen // fmt[4]
            ms = frames * 1000 // fmt[2]
            if duration_ms is not None and abs(ms - duration_ms) > 20:
                return f"{ms} ms of audio but the row says {duration_ms} ms"
            return None
        pos += 8 + clen + (clen & 1)
    return "no data chunk"


def check_calls(db, recordings_root, sipp_pid, placed):
    """Every call 1..placed of this SIPp process has an ended row with a valid WAV and a recordings row."""
    problems = []
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT call_id, ended_at, recording_path, recording_duration_ms FROM calls").fetchall()
        keys = {r[0] for r in conn.execute("SELECT storage_key FROM recordings")}
    finally:
        conn.close()
    pattern = re.compile(rf"^(\d+)-{sipp_pid}@")
    ours = {}
    for call_id, ended_at, path, dur in rows:
        m = pattern.match(call_id)
        if m:
            ours[int(m.group(1))] = (call_id, ended_at, path, dur)
    wavs = 0
    for n in range(1, placed + 1):
        row = ours.get(n)
        if row is None:
            problems.append(f"call {n}: no row in calls")
            continue
        call_id, ended_at, path, dur = row
        if ended_at is None:
            problems.append(f"{call_id}: row not ended")
        if not path:
            problems.append(f"{call_id}: no recording")
            continue
        why = wav_problem(path, dur)
        if why:
            problems.append(f"{call_id}: {path}: {why}")
        else:
            wavs += 1
        if os.path.relpath(path, recordings_root) not in keys:
            problems.append(f"{call_id}: {path}: no row in recordings")
    extra = sorted(set(ours) - set(range(1, placed + 1)))
    if extra:
        problems.append(f"{len(extra)} rows for calls SIPp did not count as placed (first: {extra[0]})")
    return len(ours), wavs, problems


# ---------------------------------------------------------------------------------------------------------------
# The plot

def nice_step(span, ticks=5):
    raw = max(span, 1e-9) / ticks
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def write_svg(path, samples, warmup_s, stop_s, fits, title):
    """Two panels (RSS in MiB, open descriptors) over minutes, the warm-up shaded, the fitted slopes dashed."""
    W, H, left, right, top, gap, ph = 900, 560, 70, 20, 50, 60, 200
    pw = W - left - right
    t_max = max(s["t_s"] for s in samples) / 60.0 or 1.0
    xstep = nice_step(t_max, 8)
    t_max = xstep * -(-t_max // xstep)
    panels = [("rss_kib", "RSS (MiB)", 1 / 1024.0, "#1f77b4"), ("fds", "open file descriptors", 1.0, "#d62728")]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for i, (key, label, scale, colour) in enumerate(panels):
        y0 = top + i * (ph + gap)
        vals = [s[key] * scale for s in samples]
        lo, hi = 0.0, max(vals) * 1.1 or 1.0
        ystep = nice_step(hi - lo, 4)
        hi = ystep * -(-hi // ystep)

        def X(t_min):
            return left + pw * t_min / t_max

        def Y(v):
            return y0 + ph - ph * (v - lo) / (hi - lo)

        out.append(f'<rect x="{left}" y="{y0}" width="{X(warmup_s / 60) - left:.1f}" height="{ph}" fill="#eeeeee"/>')
        if stop_s:
            out.append(f'<line x1="{X(stop_s / 60):.1f}" y1="{y0}" x2="{X(stop_s / 60):.1f}" y2="{y0 + ph}" '
                       f'stroke="#999" stroke-dasharray="2,3"/>')
        v = lo
        while v <= hi + 1e-9:
            out.append(f'<line x1="{left}" y1="{Y(v):.1f}" x2="{left + pw}" y2="{Y(v):.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{left - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
            v += ystep
        t = 0.0
        while t <= t_max + 1e-9:
            out.append(f'<line x1="{X(t):.1f}" y1="{y0 + ph}" x2="{X(t):.1f}" y2="{y0 + ph + 4}" stroke="black"/>')
            out.append(f'<text x="{X(t):.1f}" y="{y0 + ph + 17}" text-anchor="middle">{t:g}</text>')
            t += xstep
        out.append(f'<rect x="{left}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
        pts = " ".join(f"{X(s['t_s'] / 60):.1f},{Y(s[key] * scale):.1f}" for s in samples)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        fit = fits.get(key)
        if fit:
            (a, b), (t1, t2) = fit  # value = a + b * seconds
            out.append(f'<line x1="{X(t1 / 60):.1f}" y1="{Y((a + b * t1) * scale):.1f}" x2="{X(t2 / 60):.1f}" '
                       f'y2="{Y((a + b * t2) * scale):.1f}" stroke="black" stroke-dasharray="6,4"/>')
        out.append(f'<text x="{left + 6}" y="{y0 - 8}" fill="{colour}" font-size="13">{label}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{H - 8}" text-anchor="middle">minutes since start '
               f'(grey: warm-up; dotted: SIPp stops placing calls; dashed: least-squares fit)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def fit_line(points):
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points) or 1.0
    b = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
    return my - b * mx, b


# ---------------------------------------------------------------------------------------------------------------

def run(args):
    if not shutil.which("sipp"):
        sys.exit("sipp not found: apt-get install sip-tester (or scripts/install-test-deps.sh)")
    duration = args.seconds if args.seconds else args.minutes * 60.0
    warmup = args.warmup if args.warmup is not None else min(300.0, max(30.0, duration / 5))
    binary = ensure_binary(args)
    if args.work_dir:
        tmp = os.path.abspath(args.work_dir)
        os.makedirs(tmp, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="oncall-soak-")
    oncall, sip_port, http, _ = start_server(tmp, binary, args)
    pid = oncall.pid
    db = os.path.join(tmp, "data", "oncall.db")
    stat = os.path.join(tmp, "sipp_stat.csv")
    # Fast enough to reach N calls in ~10 s and to keep N up (SIPp's -l holds it there).
    rate = args.rate or max(1.0, args.calls / 10.0, 1.5 * args.calls / CALL_SECS)
    cmd = ["sipp", "-sf", SCENARIO, f"127.0.0.1:{sip_port}", "-i", "127.0.0.1", "-p", str(bench.free_port()),
           "-mp", str(bench.free_port() // 2 * 2), "-r", f"{rate:g}", "-l", str(args.calls), "-nostdin",
           "-trace_stat", "-stf", stat, "-fd", "1", "-trace_err", "-error_file", os.path.join(tmp, "sipp_errors.log"),
           "-max_socket", "65000", "-timeout", f"{int(duration + 120)}s", "-timeout_error"]
    print(f"soak: {args.calls} concurrent calls for {duration:.0f} s, sampling every {args.interval:g} s, "
          f"warm-up {warmup:.0f} s; work dir {tmp}", flush=True)
    sipp = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "sipp.err"), "w"))
    t0 = time.time()
    samples = [sample(t0, "run", pid, db, http, stat)]
    failures = []
    stop_s = None
    next_t = t0 + args.interval
    while True:
        # During the drain, stop waiting as soon as SIPp has exited (its last calls ended).
        while time.time() < next_t and not (stop_s is not None and sipp.poll() is not None):
            time.sleep(min(0.25, max(0.0, next_t - time.time())))
        next_t += args.interval
        if oncall.poll() is not None:
            failures.append(f"oncall exited with {oncall.returncode} during the run")
            break
        phase = "run" if stop_s is None else "drain"
        if stop_s is None and time.time() - t0 >= duration:
            # SIGUSR1: SIPp places no new calls and exits once the calls in progress have ended.
            sipp.send_signal(signal.SIGUSR1)
            stop_s = time.time() - t0
            phase = "drain"
        samples.append(sample(t0, phase, pid, db, http, stat))
        s = samples[-1]
        print(f"  {s['t_s']:7.1f} s  {phase:5}  calls {s['sipp_current']:4}  ok {s['sipp_successful']:6}  "
              f"failed {s['sipp_failed']:3}  RSS {s['rss_kib'] / 1024:7.1f} MiB  fds {s['fds']:4}  "
              f"threads {s['threads']:3}  db {(s['db_bytes'] + s['wal_bytes']) / 1e6:7.2f} MB", flush=True)
        if sipp.poll() is not None:
            break
        if time.time() - t0 > duration + 120:
            failures.append("SIPp did not finish within 120 s of the end of the run")
            sipp.kill()
            break
    sipp.wait()
    drained = sample(t0, "idle", pid, db, http, stat) if oncall.poll() is None else None
    if drained:
        samples.append(drained)
    oncall.send_signal(signal.SIGTERM)
    try:
        code = oncall.wait(timeout=30)
        if code != 0:
            failures.append(f"oncall exited with {code} after SIGTERM")
    except subprocess.TimeoutExpired:
        oncall.kill()
        failures.append("oncall did not stop within 30 s of SIGTERM")

    # SIPp's own verdict
    final = sipp_counts(stat)
    placed, ok, failed = final.get("created", 0), final.get("successful", 0), final.get("failed", 0)
    if failed:
        failures.append(f"SIPp counted {failed} failed calls (see {tmp}/sipp_errors.log)")
    if ok == 0:
        failures.append("no successful call")
    if ok + failed != placed:
        failures.append(f"SIPp placed {placed} calls but counted {ok} successful + {failed} failed")

    # Every call: row, WAV, recordings row
    rows, wavs, problems = check_calls(db, os.path.join(tmp, "data", "recordings"), sipp.pid, placed)
    if problems:
        failures.append(f"{len(problems)} call/recording problems, first: " + "; ".join(problems[:5]))
    verify = subprocess.run([binary, "--config", os.path.join(tmp, "oncall.toml"), "recordings", "verify"],
                            capture_output=True, text=True, timeout=600)
    verify_line = (verify.stdout.strip().splitlines() or ["(no output)"])[-1]
    if verify.returncode != 0:
        failures.append(f"oncall recordings verify failed: {verify_line} {verify.stderr.strip()[-300:]}")

    # Slopes over the steady part: after the warm-up, while SIPp still placed calls
    steady = [s for s in samples if s["phase"] == "run" and s["t_s"] >= warmup]
    rss_slope = slope_per_min([(s["t_s"], s["rss_kib"]) for s in steady])
    fd_slope = slope_per_min([(s["t_s"], s["fds"]) for s in steady])
    fits = {}
    if len(steady) >= 3:
        span = (steady[0]["t_s"], steady[-1]["t_s"])
        fits = {k: (fit_line([(s["t_s"], s[k]) for s in steady]), span) for k in ("rss_kib", "fds")}
    if args.max_rss_slope is not None and (rss_slope is None or rss_slope > args.max_rss_slope):
        failures.append(f"RSS slope {rss_slope} KiB/min above --max-rss-slope {args.max_rss_slope}")
    if args.max_fd_slope is not None and (fd_slope is None or fd_slope > args.max_fd_slope):
        failures.append(f"fd slope {fd_slope} fds/min above --max-fd-slope {args.max_fd_slope}")

    csv_path = args.csv or os.path.join(tmp, "soak.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(samples)
    svg_path = args.svg or os.path.join(tmp, "soak.svg")
    fmt = lambda v, unit: "n/a" if v is None else f"{v:+.1f} {unit}"  # noqa: E731
    write_svg(svg_path, samples, warmup, stop_s, fits,
              f"OnCall soak: {args.calls} concurrent IVR calls, {duration / 60:g} min, {ok} calls; "
              f"RSS {fmt(rss_slope, 'KiB/min')}, fds {fmt(fd_slope, '/min')} after warm-up")

    run_samples = [s for s in samples if s["phase"] == "run"]
    peak = max(samples, key=lambda s: s["rss_kib"])
    print("== OnCall soak ==")
    print(f"binary                   {binary}")
    print(f"SIPp                     {os.path.basename(SCENARIO)}, limit {args.calls}, rate {rate:g}/s, "
          f"{duration:.0f} s of new calls")
    print(f"calls placed / ok / fail {placed} / {ok} / {failed}")
    print(f"rows / valid WAVs        {rows} / {wavs}   (recordings verify: {verify_line})")
    print(f"RSS start / end / peak   {samples[0]['rss_kib']} / {run_samples[-1]['rss_kib']} / {peak['rss_kib']} KiB"
          f" (after the drain: {samples[-1]['rss_kib']} KiB)")
    print(f"RSS slope after warm-up  {fmt(rss_slope, 'KiB/min')} over {len(steady)} samples "
          f"({steady[0]['t_s'] if steady else 0:.0f}-{steady[-1]['t_s'] if steady else 0:.0f} s)")
    print(f"fds start / max / end    {samples[0]['fds']} / {max(s['fds'] for s in samples)} / {samples[-1]['fds']}; "
          f"slope {fmt(fd_slope, 'fds/min')}")
    print(f"threads min / max        {min(s['threads'] for s in samples)} / {max(s['threads'] for s in samples)}")
    print(f"database (db + WAL)      {(samples[-1]['db_bytes'] + samples[-1]['wal_bytes']) / 1e6:.2f} MB at the end; "
          f"db file {file_size(db) / 1e6:.2f} MB after SIGTERM")
    print(f"samples                  {csv_path}\nplot                     {svg_path}")
    if failures:
        print("FAILED:")
        for f in failures:
            print("  - " + f)
        print(f"(work dir kept: {tmp})")
        return 1
    print("PASSED: 0 failed calls, every call has its row and its WAV")
    if args.keep:
        print(f"(work dir: {tmp})")
    else:
        # The recordings and the database are the bulk (GBs after a long run); logs and samples stay.
        shutil.rmtree(os.path.join(tmp, "data"), ignore_errors=True)
        print(f"(work dir: {tmp}; its recordings and database were removed, --keep keeps them)")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200, help="concurrent calls (SIPp -l)")
    ap.add_argument("--minutes", type=float, default=30, help="how long to keep placing calls")
    ap.add_argument("--seconds", type=float, default=0, help="the same in seconds (overrides --minutes)")
    ap.add_argument("--interval", type=float, default=10, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=None, help="seconds left out of the slopes")
    ap.add_argument("--rate", type=float, default=0, help="SIPp call rate (default: enough to hold --calls up)")
    ap.add_argument("--binary", help="the oncall binary (default: the release build)")
    ap.add_argument("--build", action="store_true", help="cargo build --release first")
    ap.add_argument("--csv", help="where to write the samples (default: the work dir)")
    ap.add_argument("--svg", help="where to write the plot (default: the work dir)")
    ap.add_argument("--max-rss-slope", type=float, default=None, help="fail above this many KiB/min")
    ap.add_argument("--max-fd-slope", type=float, default=None, help="fail above this many fds/min")
    ap.add_argument("--work-dir", help="config, database, recordings and logs go here (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the recordings and the database of a passing run")
    ap.add_argument("--wrap", help="run OnCall under this command, e.g. \"heaptrack -o /tmp/oncall-heap\" "
                    "(RSS, descriptors and SIGTERM go to the server itself)")
    sys.exit(run(ap.parse_args()))

#!/usr/bin/env python3
"""OnCall benchmark: SIPp drives calls, this script measures OnCall.

SIPp (the tool the field measures SIP servers with) places the calls and reports its own figures: calls
attempted/successful/failed, call rate, response times. Alongside, this script samples the OnCall process
(CPU from /proc/PID/stat, RSS from /proc/PID/status) and reads OnCall's /metrics (RTP packets, RTP send-interval
jitter p50/p99). Nothing here asserts a threshold: it prints numbers.

  bench/run.py ivr   --calls 500 --hold 45     # N concurrent IVR calls recording a message
  bench/run.py setup --rate 1000 --total 20000 # call setups per second (INVITE/200/ACK/BYE)
  bench/run.py short --rate 40 --seconds 30     # issue 22's short IVR calls (~20 s: greeting, 1, ~6 s message,
                                               # #, goodbye) offered at a rate; past capacity OnCall answers 503
  bench/run.py short ... --max-media-load 0     # the same with the overload check off (before/after)
  bench/run.py short ... --asterisk /opt/asterisk  # then the same calls against Asterisk: OnCall/Asterisk ratios
  bench/run.py short ... --profile docs/profile.svg  # perf flame graph of OnCall's steady state

It uses target/release/oncall (run `cargo build --release` first) and binds only 127.0.0.1.
"""
import argparse, csv, os, re, shlex, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metrics(http):
    try:
        text = urllib.request.urlopen(f"http://{http}/metrics", timeout=2).read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        m = re.match(r'^([a-z_]+)(\{quantile="([0-9.]+)"\})?\s+([0-9.e+-]+)$', line)
        if m:
            key = m.group(1) + (f"_q{m.group(3)}" if m.group(3) else "")
            out[key] = float(m.group(4))
    return out


def speech_file(tmp):
    """6 s of speech (padded) as raw A-law for SIPp's rtp_stream, `speech.al` in SIPp's folder; (path, seconds
    of voice)."""
    wav, raw = os.path.join(tmp, "speech.wav"), os.path.join(tmp, "speech.al")
    subprocess.run(["espeak-ng", "-w", wav, "The boiler in building B has stopped and there is no hot water. "
                    "Please send someone this morning."], check=True)
    voice = float(subprocess.run(["soxi", "-D", wav], check=True, capture_output=True, text=True).stdout)
    subprocess.run(["sox", "-V1", wav, "-r", "8000", "-c", "1", "-t", "al", raw, "pad", "0", "6", "trim", "0", "6"], check=True)
    return raw, min(voice, 6.0)


def wav_seconds(path):
    import wave
    try:
        with wave.open(path) as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError):
        return 0.0


def sipp_current_calls(stat):
    """SIPp's own count of calls in progress (the last row of its -trace_stat CSV): the same measure for any server."""
    try:
        with open(stat, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().decode(errors="replace").splitlines()
        with open(stat) as f:
            head = f.readline().strip().split(";")
        last = lines[-1].split(";")
        return float(last[head.index("CurrentCall")]) if len(last) == len(head) else None
    except (OSError, ValueError, IndexError):
        return None


def sample_until_done(sipp, server, stat, metrics_of, timeout, profile=None):
    """Samples the server every second while SIPp runs, then stops both (the server by SIGTERM: OnCall drains).
    Returns ([(t, cpu_s, rss_kib, concurrent calls by SIPp, media_load)], the last metrics)."""
    samples = []
    t0 = time.time()
    calls = 0.0
    profiler = None
    while sipp.poll() is None and time.time() - t0 < timeout:
        if profile and profiler is None and time.time() - t0 >= PROFILE_AFTER:
            profiler = start_profile(server.pid, profile)
        m = metrics_of()
        now = sipp_current_calls(stat)
        calls = calls if now is None else now
        samples.append((time.time(), proc_cpu_seconds(server.pid), proc_rss_kib(server.pid), calls, m.get("oncall_media_load", 0)))
        time.sleep(1.0)
    if sipp.poll() is None:
        sipp.send_signal(signal.SIGINT)
        sipp.wait(timeout=10)
    if profiler:
        finish_profile(profiler, profile)
    m = metrics_of()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=40)
    except subprocess.TimeoutExpired:
        server.kill()
    return samples, m


# The profile starts once the first calls are ending (a call lasts ~20 s), so it sees the steady state.
PROFILE_AFTER, PROFILE_SECS = 25, 10


def start_profile(pid, svg):
    """perf on the server for PROFILE_SECS: DWARF call graphs, as the release build keeps no frame pointers."""
    if not shutil.which("perf"):
        sys.exit("perf not found: apt-get install linux-perf")
    data = svg + ".perf.data"
    return subprocess.Popen(["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(pid),
                             "-o", data, "--", "sleep", str(PROFILE_SECS)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profile(perf, svg):
    """The flame graph (inferno: `cargo install inferno`) of the samples, written to svg."""
    perf.wait()
    data = svg + ".perf.data"
    script = subprocess.run(["perf", "script", "-i", data], capture_output=True, check=True).stdout
    folded = subprocess.run(["inferno-collapse-perf"], input=script, capture_output=True, check=True).stdout
    with open(svg, "wb") as f:
        # Frames narrower than 2 px are left out: the SVG stays small enough to keep in docs/.
        f.write(subprocess.run(["inferno-flamegraph", "--title", "OnCall, short IVR calls (bench/run.py short --profile)",
                                "--width", "1400", "--minwidth", "2"], input=folded, capture_output=True, check=True).stdout)
    os.remove(data)
    threads = {}
    for line in folded.decode(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        name = stack.split(";", 1)[0]
        threads[name] = threads.get(name, 0) + int(n)
    total = sum(threads.values()) or 1
    print(f"  profile                  {svg} ({PROFILE_SECS} s from {PROFILE_AFTER} s in): " +
          ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in sorted(threads.items(), key=lambda kv: -kv[1])[:5]))


def run_short(args):
    """Short IVR calls offered at --rate for --seconds, against OnCall and, with --asterisk, the same SIPp
    scenario against Asterisk right after: accepted vs refused, CPU and memory per call, the recordings; prints
    numbers and the ratio, asserts nothing."""
    for tool in ["sipp", "espeak-ng", "sox"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install sip-tester espeak-ng sox")
    tmp = tempfile.mkdtemp(prefix="oncall-bench-short-")
    speech, speech_secs = speech_file(tmp)
    results = []
    servers = [("OnCall", start_oncall)] + ([("Asterisk", start_asterisk)] if args.asterisk else [])
    for name, start in servers:
        work = os.path.join(tmp, name.lower())
        os.makedirs(work)
        shutil.copy(speech, work)
        server, sip_port, http, recordings = start(work, args)
        metrics_of = (lambda http=http: metrics(http)) if http else (lambda: {})
        results.append(short_run(name, work, server, sip_port, metrics_of, recordings, speech_secs, args))
    if len(results) == 2:
        o, a = results
        print(f"== side by side, one run: OnCall / Asterisk ==")
        for key, label in [("cpu_per_call", "CPU per call"), ("kib_per_call", "memory per call")]:
            if a[key]:
                print(f"  {label:24} {o[key]:.3f} / {a[key]:.3f} = {o[key] / a[key]:.2f}")
    print(f"(work dir: {tmp})")


def short_run(name, work, server, sip_port, metrics_of, recordings, speech_secs, args):
    time.sleep(0.5)
    base_rss = proc_rss_kib(server.pid)
    total = int(args.rate * args.seconds)
    stat = os.path.join(work, "sipp_stat.csv")
    cmd = ["sipp", "-sf", os.path.join(ROOT, "bench/scenarios/ivr_short.xml"), f"127.0.0.1:{sip_port}",
           "-i", "127.0.0.1", "-p", str(free_port()), "-r", str(args.rate), "-m", str(total), "-l", "100000",
           "-nostdin", "-trace_stat", "-stf", stat, "-fd", "1", "-max_socket", "65000",
           "-timeout", str(int(args.timeout)) + "s", "-timeout_error"]
    sipp = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "sipp.err"), "w"),
                            preexec_fn=raise_nofile)
    profile = os.path.abspath(args.profile) if args.profile and name == "OnCall" else None
    samples, m = sample_until_done(sipp, server, stat, metrics_of, args.timeout, profile)
    s = sipp_final_stats(stat) if os.path.exists(stat) else {}
    peak = max((x[3] for x in samples), default=0)
    steady = [x for x in samples if peak and x[3] >= 0.9 * peak]
    cpu_pct = 100.0 * (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0]) if len(steady) >= 2 else 0.0
    calls_avg = sum(x[3] for x in steady) / len(steady) if steady else 0
    rss_steady = max((x[2] for x in steady), default=0)
    wavs = []
    for d, _, files in os.walk(recordings):
        wavs += [os.path.join(d, f) for f in files if f.endswith(".wav")]
    lengths = sorted(wav_seconds(w) for w in wavs)
    whole = sum(1 for x in lengths if x >= speech_secs)
    median = lengths[len(lengths) // 2] if lengths else 0.0
    ok, failed = int(s.get("SuccessfulCall(C)", 0) or 0), int(s.get("FailedCall(C)", 0) or 0)
    print(f"== {name}: short IVR calls, {args.rate}/s for {args.seconds} s" +
          (f" (max_media_load {args.max_media_load if args.max_media_load is not None else 'default'})" if name == "OnCall" else "") + " ==")
    for k in ["TotalCallCreated", "SuccessfulCall(C)", "FailedCall(C)", "CallLength(C)"]:
        if k in s:
            print(f"  SIPp {k:24} {s[k]}")
    if name == "OnCall":
        answered, refused = m.get("oncall_calls_answered_total", 0), m.get("oncall_calls_rejected_total", 0)
        print(f"  offered / answered / refused (503)  {total} / {answered:.0f} / {refused:.0f}")
    print(f"  peak concurrent calls    {peak:.0f} (steady-state average {calls_avg:.0f}, SIPp's count)")
    if name == "OnCall":
        print(f"  media load max / last   {max((x[4] for x in samples), default=0):.2f} / {m.get('oncall_media_load', 0):.2f}")
    print(f"  CPU (steady state)       {cpu_pct:.1f} % of one core" + (f" = {cpu_pct / calls_avg:.3f} % per call" if calls_avg else ""))
    print(f"  RSS idle / steady        {base_rss} / {rss_steady} KiB" + (f" = {(rss_steady - base_rss) / calls_avg:.1f} KiB per call" if calls_avg else ""))
    if name == "OnCall":
        print(f"  RTP send jitter p50/p99  {m.get('oncall_rtp_send_jitter_us_q0.5', 0):.0f} / {m.get('oncall_rtp_send_jitter_us_q0.99', 0):.0f} µs")
        print(f"  media ticks late         {m.get('oncall_media_ticks_late_total', 0):.0f}")
    print(f"  recordings               {len(lengths)}, {whole} at least the {speech_secs:.1f} s spoken; median {median:.1f} s")
    return {"cpu_per_call": cpu_pct / calls_avg if calls_avg else 0, "kib_per_call": (rss_steady - base_rss) / calls_avg if calls_avg else 0,
            "ok": ok, "failed": failed}


def raise_nofile():
    """Thousands of calls need thousands of sockets (SIPp's rtp_stream, Asterisk's RTP)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_asterisk(work, args):
    """Asterisk from --asterisk (its install prefix: sbin/asterisk, lib/asterisk/modules, var/lib/asterisk),
    configured here for the same calls: chan_pjsip on UDP loopback, A-law, DTMF by SIP INFO, the dialplan
    Answer, Read one digit over OnCall's greeting and menu, Playback the tone prompt and beep, Record until #,
    Playback request_created and goodbye, Hangup; the prompts are OnCall's own WAVs (8 kHz, 16-bit)."""
    prefix = os.path.abspath(args.asterisk)
    binary = os.path.join(prefix, "sbin", "asterisk")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: --asterisk takes an install prefix (see docs/performance.md)")
    sip = free_port()
    conf, rec, run = (os.path.join(work, d) for d in ("etc", "recordings", "run"))
    for d in (conf, rec, run, os.path.join(work, "log"), os.path.join(work, "spool"), os.path.join(work, "db")):
        os.makedirs(d, exist_ok=True)
    snd = os.path.join(ROOT, "sounds")
    files = {
        "asterisk.conf": f"""[directories]
astetcdir => {conf}
astmoddir => {prefix}/lib/asterisk/modules
astvarlibdir => {prefix}/var/lib/asterisk
astdbdir => {work}/db
astkeydir => {prefix}/var/lib/asterisk
astdatadir => {prefix}/var/lib/asterisk
astagidir => {prefix}/var/lib/asterisk/agi-bin
astspooldir => {work}/spool
astrundir => {run}
astlogdir => {work}/log
astsbindir => {prefix}/sbin
[options]
verbose = 0
debug = 0
""",
        # Only what the calls use, as a production build would be trimmed; the rest would only add idle memory.
        "modules.conf": """[modules]
autoload = no
load => res_sorcery_config.so
load => res_sorcery_memory.so
load => res_sorcery_astdb.so
load => res_pjproject.so
load => res_pjsip.so
load => res_pjsip_session.so
load => res_pjsip_pubsub.so
load => res_pjsip_endpoint_identifier_ip.so
load => res_pjsip_sdp_rtp.so
load => res_pjsip_dtmf_info.so
load => res_pjsip_caller_id.so
load => res_pjsip_diversion.so
load => res_rtp_asterisk.so
load => res_timing_timerfd.so
load => chan_pjsip.so
load => codec_alaw.so
load => codec_ulaw.so
load => codec_a_mu.so
load => format_wav.so
load => format_pcm.so
load => app_read.so
load => app_playback.so
load => app_record.so
load => func_strings.so
load => pbx_config.so
""",
        "pjsip.conf": f"""[udp]
type = transport
protocol = udp
bind = 127.0.0.1:{sip}

[sipp]
type = endpoint
context = ivr
disallow = all
allow = alaw,ulaw
dtmf_mode = info
direct_media = no
rtp_symmetric = yes

[sipp-ip]
type = identify
endpoint = sipp
match = 127.0.0.1
""",
        "rtp.conf": "[general]\nrtpstart = 30000\nrtpend = 39998\n",
        "logger.conf": "[general]\n[logfiles]\nmessages => error,warning\n",
        "extensions.conf": f"""[ivr]
exten => 100,1,Answer()
 same => n,Read(KEY,{snd}/greeting&{snd}/menu,1,,1,10)
 same => n,Playback({snd}/record_after_tone&{snd}/beep)
 same => n,Record({rec}/msg-${{FILTER(0-9,${{UNIQUEID}})}}.wav,0,3600,qk)
 same => n,Playback({snd}/request_created&{snd}/goodbye)
 same => n,Hangup()
""",
    }
    for name, text in files.items():
        with open(os.path.join(conf, name), "w") as f:
            f.write(text)
    log = open(os.path.join(work, "asterisk.log"), "w")
    p = subprocess.Popen([binary, "-f", "-C", os.path.join(conf, "asterisk.conf")], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, preexec_fn=raise_nofile)
    ctl = os.path.join(run, "asterisk.ctl")
    for _ in range(300):
        if os.path.exists(ctl) and subprocess.run([binary, "-C", os.path.join(conf, "asterisk.conf"), "-rx", "pjsip show transports"],
                                                  capture_output=True, text=True).stdout.count("127.0.0.1"):
            return p, sip, None, rec
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    sys.exit("asterisk did not start; see " + log.name)


def start_oncall(tmp, args):
    """OnCall's release build on loopback ports with its default menu, paging off; (process, SIP port, HTTP
    address for /metrics, its recordings folder)."""
    sip, http = free_port(), free_port()
    cfg = os.path.join(tmp, "oncall.toml")
    load = getattr(args, "max_media_load", None)
    media_load = f"max_media_load = {load}\n" if load is not None else ""
    with open(cfg, "w") as f:
        f.write(f"""[sip]
listen_udp = "127.0.0.1:{sip}"
listen_tcp = "127.0.0.1:{sip}"
rtp_port_min = 20000
rtp_port_max = 29998
calls_per_second_per_source = 0  # every benchmark call comes from SIPp's one address; measure OnCall, not the limiter
{media_load}[http]
listen = "127.0.0.1:{http}"
[storage]
data_dir = "{tmp}/data"
sounds_dir = "{ROOT}/sounds"
[ivr]
max_message_secs = 3600
silence_secs = 0
[paging]
enabled = false  # the benchmarks measure the IVR: callers are released after their message, nobody is phoned
[log]
level = "warn"
""")

    # ONCALL_BENCH_BINARY: another build (e.g. a debug one, to try a scenario); the figures are for release.
    binary = os.environ.get("ONCALL_BENCH_BINARY") or os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "oncall")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: run `cargo build --release` first")
    log = open(os.path.join(tmp, "oncall.log"), "w")
    wrap = shlex.split(getattr(args, "wrap", None) or "")
    p = subprocess.Popen(wrap + [binary, "--config", cfg, "serve"], stdout=log, stderr=log)
    if wrap:
        p = Wrapped(p, binary)
    for _ in range(600 if wrap else 100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1)
            return p, sip, f"127.0.0.1:{http}", os.path.join(tmp, "data", "recordings")
        except OSError:
            time.sleep(0.1)
    p.kill()
    sys.exit("oncall did not become healthy; see " + log.name)


class Wrapped:
    """OnCall started under a wrapper command (--wrap, e.g. `heaptrack -o /tmp/h`): `pid` and signals are the
    server's own (the wrapper's descendant running the binary), poll() and the exit code are the wrapper's, and
    wait() gives the wrapper the time it needs after the server has exited (heaptrack writes its file)."""

    def __init__(self, proc, binary):
        self.proc, self.args = proc, proc.args
        exe = os.path.realpath(binary)
        for _ in range(600):
            self.pid = self._descendant_running(exe)
            if self.pid or proc.poll() is not None:
                break
            time.sleep(0.1)
        if not self.pid:
            proc.kill()
            sys.exit(f"no process running {exe} under {shlex.join(proc.args[:-4])}")

    def _descendant_running(self, exe):
        parent = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        for pid in parent:
            q = pid
            while q in parent and q != self.proc.pid and q > 1:
                q = parent[q]
            try:
                if q == self.proc.pid and os.path.realpath(f"/proc/{pid}/exe") == exe:
                    return pid
            except OSError:
                pass
        return None

    def _server_alive(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    @property
    def returncode(self):
        return self.proc.returncode

    def poll(self):
        return self.proc.poll()

    def send_signal(self, sig):
        if self._server_alive():
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)
        self.proc.kill()

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.time() + timeout
        while self._server_alive():
            if deadline is not None and time.time() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.1)
        return self.proc.wait()


def sipp_final_stats(path):
    with open(path) as f:
        rows = list(csv.reader(f, delimiter=";"))
    head, last = rows[0], rows[-1]
    return dict(zip(head, last))


def run(args):
    if not shutil.which("sipp"):
        sys.exit("sipp not found: apt-get install sip-tester")
    tmp = tempfile.mkdtemp(prefix="oncall-bench-")
    oncall, sip_port, http, _ = start_oncall(tmp, args)
    metrics_of = lambda: metrics(http)  # noqa: E731
    pid = oncall.pid
    time.sleep(0.5)
    base_rss = proc_rss_kib(pid)
    if args.mode == "ivr":
        scenario = os.path.join(ROOT, "bench/scenarios/ivr_hold.xml")
        call_secs = 35.0 + 1.0
        rate = args.rate or max(1.0, args.calls / 10.0)
        total = args.total or int(args.calls + rate * max(0.0, args.hold - 0))
        extra = ["-l", str(args.calls)]
    else:
        scenario = os.path.join(ROOT, "bench/scenarios/setup_teardown.xml")
        rate = args.rate or 500
        total = args.total or int(rate * 10)
        extra = ["-l", str(args.limit), "-d", "0"]
    stat = os.path.join(tmp, "sipp_stat.csv")
    cmd = ["sipp", "-sf", scenario, f"127.0.0.1:{sip_port}", "-i", "127.0.0.1", "-p", str(free_port()),
           "-mp", str(free_port() // 2 * 2), "-r", str(rate), "-m", str(total), "-nostdin",
           "-trace_stat", "-stf", stat, "-fd", "1", "-max_socket", "65000", "-timeout", str(int(args.timeout)) + "s",
           "-timeout_error"] + extra
    sipp = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "sipp.err"), "w"))
    samples, m = sample_until_done(sipp, oncall, stat, metrics_of, args.timeout)

    s = sipp_final_stats(stat) if os.path.exists(stat) else {}
    peak_calls = max((x[3] for x in samples), default=0)
    # Steady state: samples where at least 90% of the peak concurrency was up.
    if args.mode == "ivr":
        steady = [x for x in samples if peak_calls and x[3] >= 0.9 * peak_calls]
    else:
        steady = samples  # setup mode: the whole run; calls are too short for per-call figures
    cpu_pct = rss_steady = 0.0
    if len(steady) >= 2:
        cpu_pct = 100.0 * (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
        rss_steady = max(x[2] for x in steady)
    peak_rss = max((x[2] for x in samples), default=0)
    calls_avg = sum(x[3] for x in steady) / len(steady) if steady and args.mode == "ivr" else 0
    print(f"== OnCall bench: {args.mode} ==")
    print(f"SIPp: scenario {os.path.basename(scenario)}, rate {rate}/s, limit {extra[1]}, total {total}")
    for k in ["TotalCallCreated", "SuccessfulCall(C)", "FailedCall(C)", "OutgoingCall(C)", "CallRate(C)",
              "ResponseTime1(C)", "ResponseTime1StDev(C)", "CallLength(C)"]:
        if k in s:
            print(f"  {k:24} {s[k]}")
    print("OnCall:")
    print(f"  peak concurrent calls    {peak_calls:.0f} (steady-state average {calls_avg:.0f})")
    print(f"  CPU (steady state)       {cpu_pct:.1f} % of one core", end="")
    print(f" = {cpu_pct / calls_avg:.3f} % per call" if calls_avg else "")
    print(f"  RSS idle / steady / peak {base_rss} / {rss_steady:.0f} / {peak_rss} KiB", end="")
    print(f" = {(rss_steady - base_rss) / calls_avg:.1f} KiB per call" if calls_avg else "")
    print(f"  RTP packets sent / recv  {m.get('oncall_rtp_packets_sent_total', 0):.0f} / {m.get('oncall_rtp_packets_received_total', 0):.0f}")
    print(f"  RTP send jitter p50/p99  {m.get('oncall_rtp_send_jitter_us_q0.5', 0):.0f} / {m.get('oncall_rtp_send_jitter_us_q0.99', 0):.0f} µs")
    print(f"  media ticks late         {m.get('oncall_media_ticks_late_total', 0):.0f}")
    print(f"(work dir: {tmp})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["ivr", "setup", "short"])
    ap.add_argument("--calls", type=int, default=100, help="ivr: concurrent calls")
    ap.add_argument("--hold", type=float, default=30, help="ivr: seconds to keep generating new calls after ramp-up")
    ap.add_argument("--rate", type=float, default=0, help="calls per second (SIPp -r)")
    ap.add_argument("--total", type=int, default=0, help="total calls (SIPp -m)")
    ap.add_argument("--limit", type=int, default=5000, help="setup: concurrent-call limit (SIPp -l)")
    ap.add_argument("--timeout", type=float, default=300, help="stop after this many seconds")
    ap.add_argument("--wrap", help="run OnCall under this command, e.g. \"heaptrack -o /tmp/oncall-heap\"")
    ap.add_argument("--seconds", type=float, default=30, help="short: how long calls are offered")
    ap.add_argument("--asterisk", help="short: also run the calls against Asterisk, installed under this prefix "
                    "(docs/performance.md says how to build one), and print OnCall/Asterisk ratios")
    ap.add_argument("--profile", metavar="SVG", help="short: profile OnCall with perf during the steady state and "
                    "write a flame graph there (needs linux-perf and inferno)")
    ap.add_argument("--max-media-load", type=float, default=None, help="short: [sip] max_media_load (0: check off)")
    a = ap.parse_args()
    run_short(a) if a.mode == "short" else run(a)

#!/usr/bin/env python3
"""`make bench`: Signoff against its two peers, side by side, on this machine.

The peers: the seed's Express stack (Passport + express-session), and the stack a Rust user would
pick instead (axum-login + tower-sessions + tower-sessions-sqlx-store, set up as axum-login's
sqlite example). Starts the three servers on loopback (on SQLite, with Express on MemoryStore;
then on PostgreSQL, with Express on connect-pg-simple), measures each with wrk and a small
keep-alive client, interleaving rounds so that machine noise hits all alike, and reports medians
and ratios. Writes bench/results/latest.json and bench/results/latest.md.

Environment: BENCH_SECONDS (8) per wrk run, BENCH_ROUNDS (3), BENCH_CONNECTIONS (64),
BENCH_SESSIONS (300) for the logout latency, BENCH_BACKENDS ("sqlite postgres"),
TEST_DATABASE_URL (a PostgreSQL admin URL; `make bench` sets it), BENCH_SIGNOFF (another server
binary to measure, e.g. an older commit's), BENCH_PEERS ("express axum-login"; "" for Signoff
alone), BENCH_RESULTS (where to write the results; bench/results).
"""

import datetime
import gzip
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_DIR = os.path.join(ROOT, "bench", "peers", "express-passport")
AXUM_LOGIN_DIR = os.path.join(ROOT, "bench", "peers", "axum-login")
PEER_TARGET = os.path.join(ROOT, "target", "peers")
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(ROOT, "bench", "results"))
LOGIN_LUA = os.path.join(ROOT, "bench", "wrk", "login.lua")

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "300"))
BACKENDS = os.environ.get("BENCH_BACKENDS", "sqlite postgres").split()
# Another Signoff build to measure (an older commit's, to compare), and which peers to run beside
# it ("" for none: a quick run of Signoff alone, with no ratios).
SIGNOFF_BINARY = os.environ.get("BENCH_SIGNOFF", os.path.join(ROOT, "target", "release", "server"))
PEERS = os.environ.get("BENCH_PEERS", "express axum-login").split()
USER = "benchuser"
PASSWORD = "correct horse battery staple"
LOGIN_CONNECTIONS = 16


def log(message):
    print(f"[bench] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Servers


class Server:
    def __init__(self, name, port, cookie, argv, env, cwd=ROOT):
        self.name, self.port, self.cookie = name, port, cookie
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        full_env = dict(os.environ)
        full_env.update(env)
        self.process = subprocess.Popen(argv, env=full_env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited at start-up; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/me")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer within 60 s; see {self.log.name}")

    def peak_rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def request(port, method, path, cookie_header=None, body=None, conn=None):
    """One HTTP request; returns (status, headers, body, seconds)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Accept": "application/json"}
    if cookie_header:
        headers["Cookie"] = cookie_header
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode(body)
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    if own:
        conn.close()
    return response.status, response.getheaders(), data, elapsed


def session_cookie(server, headers):
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith(server.cookie + "="):
            pair = value.split(";", 1)[0]
            if pair.split("=", 1)[1]:
                return pair
    return None


def login(server):
    status, headers, body, _ = request(server.port, "POST", "/api/login", body={"username": USER, "password": PASSWORD})
    cookie = session_cookie(server, headers)
    if status != 200 or not cookie:
        raise SystemExit(f"{server.name}: login failed with {status}: {body[:200]!r}")
    return cookie


# ---------------------------------------------------------------------------------------------
# Measurements

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    return float(match.group(1)) * UNITS[match.group(2)] if match else None


def wrk(url, connections, seconds, cookie=None, script=None):
    argv = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if cookie:
        argv += ["-H", f"Cookie: {cookie}"]
    if script:
        argv += ["-s", script]
    output = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    result = {"rps": None, "p50_ms": None, "p99_ms": None, "errors": 0}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(line.split()[1])
        elif re.match(r"^50(\.0+)?%", line):
            result["p50_ms"] = parse_ms(line.split()[1])
        elif re.match(r"^99(\.0+)?%", line):
            result["p99_ms"] = parse_ms(line.split()[1])
        elif line.startswith("Non-2xx or 3xx responses:"):
            result["errors"] += int(line.split(":")[1])
        elif line.startswith("Socket errors:"):
            result["errors"] += sum(int(n) for n in re.findall(r"\d+", line))
    return result


def me_idle(server, cookie):
    """`GET /api/me` with no login storm beside it; with no cookie, everything but the session read."""
    return wrk(server.base + "/api/me", CONNECTIONS, SECONDS, cookie=cookie)


def login_throughput(server):
    return wrk(server.base + "/api/login", LOGIN_CONNECTIONS, SECONDS, script=LOGIN_LUA)


def me_during_login_storm(server, cookie):
    storm = {}

    def run_storm():
        storm.update(wrk(server.base + "/api/login", LOGIN_CONNECTIONS, SECONDS + 2, script=LOGIN_LUA))

    thread = threading.Thread(target=run_storm)
    thread.start()
    time.sleep(1)
    result = me_idle(server, cookie)
    thread.join()
    result["storm_login_rps"] = storm.get("rps")
    return result


def logout_latency(server):
    """Signs in SESSIONS times (8 at a time), then signs each session out over one keep-alive
    connection, timing each logout; checks a sample of the old cookies is really signed out."""
    cookies = []
    lock = threading.Lock()

    refused = []

    # A failed sign-in ends its thread with SystemExit, which threading swallows: keep the reason
    # so that the run stops with it instead of with an empty list further down.
    def sign_in(count):
        try:
            for _ in range(count):
                cookie = login(server)
                with lock:
                    cookies.append(cookie)
        except SystemExit as error:
            refused.append(str(error))

    workers = [threading.Thread(target=sign_in, args=(SESSIONS // 8,)) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if refused:
        raise SystemExit(f"logout latency: {len(refused)} of 8 sign-in threads failed: {refused[0]}")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    times, failures = [], 0
    for cookie in cookies:
        status, _, _, elapsed = request(server.port, "POST", "/api/logout", cookie_header=cookie, body={}, conn=conn)
        times.append(elapsed * 1000)
        failures += status != 200
    conn.close()
    alive = 0
    for cookie in cookies[:: max(1, len(cookies) // 20)]:
        _, _, body, _ = request(server.port, "GET", "/api/me", cookie_header=cookie)
        alive += body.strip() != b"null"
    times.sort()
    return {
        "p50_ms": times[len(times) // 2],
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
        "sessions": len(times),
        "errors": failures,
        "still_signed_in_after_logout": alive,
    }


def median_of(runs, key):
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def measure_pair(pair):
    """Interleaved rounds over the servers of one backend; medians per metric."""
    cookies = {}
    for server in pair:
        status, _, _, _ = request(server.port, "POST", "/api/register", body={"username": USER, "password": PASSWORD})
        if status not in (200, 409):
            raise SystemExit(f"{server.name}: register failed with {status}")
        cookies[server.name] = login(server)
    raw = {server.name: {"me": [], "anon": [], "login": [], "storm": []} for server in pair}
    for round_ in range(ROUNDS):
        for server in pair:
            log(f"round {round_ + 1}/{ROUNDS}: {server.name}")
            raw[server.name]["me"].append(me_idle(server, cookies[server.name]))
            raw[server.name]["anon"].append(me_idle(server, None))
            raw[server.name]["login"].append(login_throughput(server))
            raw[server.name]["storm"].append(me_during_login_storm(server, cookies[server.name]))
    results = {}
    for server in pair:
        log(f"logout latency: {server.name}")
        runs = raw[server.name]
        results[server.name] = {
            "me_rps": median_of(runs["me"], "rps"),
            "me_p50_ms": median_of(runs["me"], "p50_ms"),
            "me_p99_ms": median_of(runs["me"], "p99_ms"),
            "anon_rps": median_of(runs["anon"], "rps"),
            "login_rps": median_of(runs["login"], "rps"),
            "me_p99_during_logins_ms": median_of(runs["storm"], "p99_ms"),
            "logout": logout_latency(server),
            "errors": sum(run["errors"] for kind in runs.values() for run in kind),
            "peak_rss_mib": round((server.peak_rss_kib() or 0) / 1024, 1),
            "runs": runs,
        }
    return results


# ---------------------------------------------------------------------------------------------
# Set-up


def run(argv, **kwargs):
    log("$ " + " ".join(argv))
    subprocess.run(argv, check=True, cwd=kwargs.pop("cwd", ROOT), **kwargs)


def build():
    run(["cargo", "leptos", "build", "--release"])
    run(["cargo", "build", "--release", "-p", "server", "--example", "ceiling"])
    # Not a workspace member (its own lock file): built into target/peers.
    run(["cargo", "build", "--release", "--locked", "--manifest-path", os.path.join(AXUM_LOGIN_DIR, "Cargo.toml"),
         "--target-dir", PEER_TARGET])
    lock = os.path.join(PEER_DIR, "package-lock.json")
    marker = os.path.join(PEER_DIR, "node_modules", ".package-lock.json")
    if not os.path.exists(marker) or os.path.getmtime(marker) < os.path.getmtime(lock):
        run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR)


def pg_database(admin_url, name):
    run(["psql", admin_url, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], stdout=subprocess.DEVNULL)
    run(["psql", admin_url, "-q", "-c", f"CREATE DATABASE {name}"], stdout=subprocess.DEVNULL)
    base, _, query = admin_url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")


def start_pair(backend, workdir):
    if backend == "sqlite":
        signoff_db = f"sqlite://{workdir}/signoff.db"
        peer_env = {"STORE": "memory"}
        axum_login_db = f"sqlite://{workdir}/axum-login.db?mode=rwc"
    else:
        admin = os.environ.get("TEST_DATABASE_URL")
        if not admin:
            raise SystemExit("the PostgreSQL benchmark needs TEST_DATABASE_URL (make bench sets it)")
        signoff_db = pg_database(admin, "signoff_bench_signoff")
        peer_env = {"STORE": "pg", "DATABASE_URL": pg_database(admin, "signoff_bench_express")}
        axum_login_db = pg_database(admin, "signoff_bench_axum_login")
    signoff = Server(
        "signoff",
        3300,
        "signoff_session",
        [SIGNOFF_BINARY],
        {
            "DATABASE_URL": signoff_db,
            "LEPTOS_SITE_ADDR": "127.0.0.1:3300",
            "LEPTOS_SITE_ROOT": os.path.join(ROOT, "target", "site"),
            "LEPTOS_ENV": "PROD",
            "RUST_LOG": "warn",
            # Every sign-in is reserved in its buckets until its hash is done, so one account
            # from one address has at most LOGIN_MAX_FAILURES sign-ins in flight: the login storm
            # (16 connections, one user, one address) needs more than the default 10.
            "LOGIN_MAX_FAILURES": "64",
            # A sign-in whose client hangs up before the answer keeps its reservation as a
            # failure (the conservative reading: its guess may have been checked). wrk hangs up
            # on the storm's 16 connections at the end of every run, so over three rounds the
            # account would be throttled before the logout measurement signs in again: a short
            # window lets those reservations lapse between runs.
            "LOGIN_THROTTLE_WINDOW": "1",
            # wrk is one address with many connections (and idle ones between rounds): past
            # the default share of an eighth of SERVER_MAX_CONNECTIONS it would be refused.
            "SERVER_MAX_CONNECTIONS_PER_CLIENT": "100000",
        },
    )
    servers = [signoff]
    if "express" in PEERS:
        servers.append(Server("express", 3301, "connect.sid", ["node", "server.js"], dict(peer_env, PORT="3301"), cwd=PEER_DIR))
    if "axum-login" in PEERS:
        servers.append(Server(
            "axum-login",
            3303,
            "id",  # tower-sessions' default cookie name
            [os.path.join(PEER_TARGET, "release", "axum-login-peer")],
            {"DATABASE_URL": axum_login_db, "PORT": "3303"},
        ))
    return servers


def ceiling():
    binary = os.path.join(ROOT, "target", "release", "examples", "ceiling")
    process = subprocess.Popen([binary, "127.0.0.1:3302"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        runs = [wrk("http://127.0.0.1:3302/", CONNECTIONS, SECONDS) for _ in range(ROUNDS)]
    finally:
        process.terminate()
        process.wait()
    return {"rps": median_of(runs, "rps"), "p99_ms": median_of(runs, "p99_ms")}


def bundle():
    pkg = os.path.join(ROOT, "target", "site", "pkg")
    sizes = {}
    for name in sorted(os.listdir(pkg)):
        if not name.endswith((".wasm", ".js")):
            continue
        data = open(os.path.join(pkg, name), "rb").read()
        brotli = subprocess.run(["brotli", "-q", "11", "-c"], input=data, capture_output=True, check=True).stdout
        sizes[name] = {"raw": len(data), "gzip": len(gzip.compress(data, 9)), "brotli": len(brotli)}
    return sizes


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(total_kib / 1024 / 1024),
        "os": platform.platform(),
        "rustc": rustc,
        "node": node,
        "wrk_threads": 2,
    }


# ---------------------------------------------------------------------------------------------
# Report


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def fmt(value, unit=""):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
    return f"{value}{unit}"


def rows_for(results):
    s, e, a = results["signoff"], results.get("express"), results.get("axum-login")

    def row(name, key, unit="", get=lambda r, k: r[k]):
        return (name, get(s, key), get(e, key) if e else None, get(a, key) if a else None, unit)

    logout = lambda r, k: r["logout"][k]  # noqa: E731
    errors = lambda r, _: r["errors"] + r["logout"]["errors"]  # noqa: E731
    return [
        row("`GET /api/me` signed in, req/s (higher is better)", "me_rps"),
        row("`GET /api/me` p50", "me_p50_ms", " ms"),
        row("`GET /api/me` p99", "me_p99_ms", " ms"),
        row("`GET /api/me` signed out, req/s (higher is better)", "anon_rps"),
        row("`GET /api/me` p99 during a login storm", "me_p99_during_logins_ms", " ms"),
        row("`POST /api/login`, req/s (higher is better)", "login_rps"),
        row("`POST /api/logout` p50", "p50_ms", " ms", logout),
        row("`POST /api/logout` p99", "p99_ms", " ms", logout),
        row("peak RSS", "peak_rss_mib", " MiB"),
        row("errors (non-2xx, socket)", None, "", errors),
    ]


# The goals of issue 13: /api/me signed in against the seed's Express stack, per backend.
THROUGHPUT_GOAL = {"sqlite": 10, "postgres": 12}
P99_GOAL_MS = 5
SIGNED_IN_GOAL = 1.5
WASM_GOAL_BYTES = 100_000


def targets(report):
    checks = []
    for backend, results in report["backends"].items():
        s, e = results["signoff"], results.get("express", {})
        tput = ratio(s["me_rps"], e.get("me_rps"))
        goal = THROUGHPUT_GOAL.get(backend, 10)
        checks.append((f"{backend}: `/api/me` throughput ≥ {goal}× Express", tput is not None and tput >= goal, f"{tput}×"))
        checks.append((f"{backend}: `/api/me` p99 ≤ {P99_GOAL_MS} ms at {CONNECTIONS} connections", (s["me_p99_ms"] or 1e9) <= P99_GOAL_MS, fmt(s["me_p99_ms"], " ms")))
        cost = ratio(s["anon_rps"], s["me_rps"])
        checks.append((f"{backend}: signed in within {SIGNED_IN_GOAL}× of signed out (req/s)", cost is not None and cost <= SIGNED_IN_GOAL, f"{cost}×"))
        storm = ratio(s["me_p99_during_logins_ms"], s["me_p99_ms"])
        checks.append((f"{backend}: `/api/me` p99 in a login storm ≤ 2× idle", storm is not None and storm <= 2, f"{storm}×"))
    wasm = [v for k, v in report["bundle"].items() if k.endswith(".wasm")]
    if wasm:
        checks.append((f"hydrate `.wasm` ≤ {WASM_GOAL_BYTES // 1000} KB brotli", wasm[0]["brotli"] <= WASM_GOAL_BYTES, f"{wasm[0]['brotli'] / 1000:.1f} KB"))
    return checks


def markdown(report):
    m = report["machine"]
    lines = [
        f"Measured {report['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['os']}; {m['rustc']}; Node {m['node']}). Loopback; wrk with {m['wrk_threads']} threads on the "
        f"same cores; medians of {report['rounds']} interleaved rounds of {report['seconds']} s; "
        f"`/api/me` at {report['connections']} connections, logins at {LOGIN_CONNECTIONS}; logout latency over "
        f"{report['sessions']} sessions, one at a time. The ratios are Signoff ÷ each peer: above 1 is "
        f"Signoff ahead for req/s, below 1 for times and memory.",
        "",
    ]
    for backend, results in report["backends"].items():
        peer = "MemoryStore" if backend == "sqlite" else "connect-pg-simple"
        lines += [
            f"**{'SQLite' if backend == 'sqlite' else 'PostgreSQL'}** (Express seed stack with {peer}; "
            f"axum-login with tower-sessions-sqlx-store's {'SqliteStore' if backend == 'sqlite' else 'PostgresStore'})",
            "",
            "| metric | Signoff | Express seed | axum-login stock | ÷ Express | ÷ axum-login |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, s, e, a, unit in rows_for(results):
            lines.append(
                f"| {name} | {fmt(s, unit)} | {fmt(e, unit)} | {fmt(a, unit)} | {fmt(ratio(s, e))} | {fmt(ratio(s, a))} |"
            )
        lines.append("")
    c = report["ceiling"]
    lines += [
        f"Machine ceiling (an axum route with no I/O, same wrk settings): {fmt(c['rps'])} req/s, "
        f"p99 {fmt(c['p99_ms'], ' ms')}.",
        "",
        "Hydrate bundle (release):",
        "",
        "| file | raw | gzip | brotli |",
        "|---|---:|---:|---:|",
    ]
    for name, size in report["bundle"].items():
        lines.append(f"| `{name}` | {size['raw']:,} | {size['gzip']:,} | {size['brotli']:,} |")
    lines += ["", "Targets:", ""]
    for name, ok, value in targets(report):
        lines.append(f"- {'reached' if ok else '**not reached**'}: {name} ({value})")
    return "\n".join(lines) + "\n"


def main():
    for tool in ("wrk", "node", "npm", "brotli"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (make bench installs it)")
    if "--no-build" not in sys.argv:
        build()
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "seconds": SECONDS,
        "rounds": ROUNDS,
        "connections": CONNECTIONS,
        "sessions": SESSIONS,
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as workdir:
        for backend in BACKENDS:
            log(f"backend: {backend}")
            pair = start_pair(backend, workdir)
            try:
                report["backends"][backend] = measure_pair(pair)
            finally:
                for server in pair:
                    server.stop()
    log("ceiling")
    report["ceiling"] = ceiling()
    report["bundle"] = bundle()
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "latest.json"), "w") as out:
        json.dump(report, out, indent=2)
    text = markdown(report)
    with open(os.path.join(RESULTS, "latest.md"), "w") as out:
        out.write(text)
    print()
    print(text)


if __name__ == "__main__":
    main()

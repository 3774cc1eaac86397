"""Ingest benchmark: cardiogate's Storage SCP against dcmtk ``storescp`` on the same machine.

Synthetic 512x512 16-bit CT slices are sent by dcmtk ``storescu`` over 127.0.0.1 to

* ``cardiogate serve`` (fresh data directory per repetition), and
* dcmtk ``storescp`` writing into a fresh directory (``--fork`` for several associations),

in three scenarios: one association carrying every file, and four or eight concurrent
associations (that many ``storescu`` processes, each with its share of the files, started
together).
Repetitions are interleaved (cardiogate, storescp, cardiogate, storescp, ...).

Every dcmtk tool runs with ``TCP_NODELAY=1`` in its environment; without it Nagle's
algorithm stalls each file on loopback and dcmtk looks ~20x slower than it is.

Reported per scenario and receiver: median instances/s and MB/s (1 MB = 10^6 bytes of
DICOM files sent), the peak RSS of the receiver's whole process tree (main process plus
listener or forked children, summed, sampled every 50 ms), and the receiver's CPU time
(user + system, process tree, during the transfer) per instance.

Usage::

    .venv/bin/python bench/ingest.py [--reps 3] [--slices 500] [--listener-processes N]
                                     [--scenario 1,4,8] [--data DIR] [--json results.json]
                                     [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
CARDIOGATE_AE = "CARDIOGATE"
STORESCP_AE = "STORESCP"
CALLING_AE = "BENCHSCU"
SAMPLE_SECONDS = 0.05
SCENARIOS: list[tuple[str, int]] = [
    ("1 association", 1),
    ("4 associations", 4),
    ("8 associations", 8),
]
RECEIVERS = ("cardiogate", "storescp")
AIM_ONE_ASSOC_VS_STORESCP = 0.3
AIM_FOUR_VS_ONE = 1.5


# -- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dcmtk_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    return env


def find_dcmtk(tool: str, bin_dir: Path | None) -> str:
    """The dcmtk binary (not pynetdicom's console script of the same name in the venv)."""
    candidates: list[Path] = []
    if bin_dir is not None:
        candidates.append(bin_dir / tool)
    venv_bin = Path(sys.prefix) / "bin"
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d and Path(d).resolve() != venv_bin.resolve():
            candidates.append(Path(d) / tool)
    candidates.append(Path("/usr/bin") / tool)
    for c in candidates:
        if not (c.is_file() and os.access(c, os.X_OK)):
            continue
        out = subprocess.run(
            [str(c), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        if "dcmtk" in (out.stdout + out.stderr).lower():
            return str(c)
    raise SystemExit(f"dcmtk {tool} not found (apt-get install dcmtk, or pass --dcmtk-bin)")


def machine_description(storescu: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run(
        [storescu, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    dcmtk = next((ln.strip("$ ").strip() for ln in version.splitlines() if "dcmtk" in ln), "?")
    dcmtk = dcmtk.removeprefix("dcmtk:").strip()
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "dcmtk": dcmtk,
    }


# -- data ----------------------------------------------------------------------------------


def prepare_data(
    root: Path, n_slices: int, splits: list[int]
) -> tuple[Path, dict[int, list[Path]], int]:
    """``root/all`` with ``n_slices`` files and, for each ``parts`` in ``splits``,
    ``root/of{parts}-{i}`` with every ``parts``-th file hard-linked.

    Reuses what is there when the counts match. Returns (all dir, part dirs by split,
    total bytes).
    """
    all_dir = root / "all"
    files = sorted(all_dir.glob("*.dcm")) if all_dir.is_dir() else []
    if len(files) != n_slices:
        from cardiogate_phantoms import make_ct_series, write_series

        print(f"generating {n_slices} synthetic CT slices (512x512, 16-bit) in {all_dir} ...")
        t0 = time.perf_counter()
        shutil.rmtree(all_dir, ignore_errors=True)
        series = make_ct_series(7, n_slices=n_slices, rows=512, columns=512)
        write_series(series, all_dir)
        del series
        files = sorted(all_dir.glob("*.dcm"))
        print(f"  done in {time.perf_counter() - t0:.1f} s")
    part_dirs: dict[int, list[Path]] = {}
    for parts in splits:
        part_dirs[parts] = []
        for i in range(parts):
            d = root / f"of{parts}-{i + 1}"
            mine = files[i::parts]
            if not d.is_dir() or len(list(d.glob("*.dcm"))) != len(mine):
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir(parents=True)
                for f in mine:
                    os.link(f, d / f.name)
            part_dirs[parts].append(d)
    return all_dir, part_dirs, sum(f.stat().st_size for f in files)


# -- process-tree monitoring ---------------------------------------------------------------


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(root: psutil.Process) -> float:
    """user + system of every live process in the tree, plus what they reaped."""
    total = 0.0
    for p in _tree(root):
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def tree_hwm_bytes(root: psutil.Process) -> int:
    """Sum of VmHWM (peak RSS) of the live processes in the tree."""
    total = 0
    for p in _tree(root):
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class RssSampler:
    """Peak of the summed RSS of a process tree, sampled every ``SAMPLE_SECONDS``."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self.max_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def sample(self) -> None:
        total = 0
        procs = _tree(self.root)
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        self.peak = max(self.peak, total)
        self.max_procs = max(self.max_procs, len(procs))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# -- one run -------------------------------------------------------------------------------


@dataclass
class RunResult:
    scenario: str
    receiver: str
    rep: int
    associations: int
    instances: int
    seconds: float
    inst_per_s: float
    mb_per_s: float
    peak_rss_mib: float
    hwm_sum_mib: float
    cpu_seconds: float
    cpu_ms_per_instance: float
    processes: int
    extra: dict[str, Any] = field(default_factory=dict)


def send(storescu: str, ae: str, port: int, dirs: list[Path], log_dir: Path) -> float:
    """Start one storescu per directory together; return seconds until all have exited."""
    env = dcmtk_env()
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    t0 = time.perf_counter()
    for i, d in enumerate(dirs):
        log = log_dir / f"storescu-{i + 1}.log"
        with log.open("wb") as out:
            cmd = [storescu, "-aet", CALLING_AE, "-aec", ae, "+sd", "+sp", "*.dcm", "-q"]
            cmd += ["127.0.0.1", str(port), str(d)]
            procs.append(
                (subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT), log)
            )
    for p, _ in procs:
        p.wait()
    elapsed = time.perf_counter() - t0
    for p, log in procs:
        if p.returncode != 0:
            raise RuntimeError(
                f"storescu exited {p.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
    return elapsed


def _http_get(url: str, timeout: float = 5.0, token: str | None = None) -> tuple[int, bytes]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


def wait_listening(pid: int, port: int, timeout: float = 30.0) -> None:
    proc = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in proc.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                return
        time.sleep(0.05)
    raise RuntimeError(f"process {pid} is not listening on port {port} after {timeout} s")


def run_cardiogate(
    storescu: str,
    dirs: list[Path],
    n: int,
    total_bytes: int,
    work: Path,
    listener_processes: int | None,
    scenario: str,
    rep: int,
) -> RunResult:
    data_dir = work / "cardiogate-data"
    dicom_port, http_port = free_port(), free_port()
    while http_port == dicom_port:
        http_port = free_port()
    env = dict(os.environ)
    env.update(
        CARDIOGATE_DATA_DIR=str(data_dir),
        CARDIOGATE_AE_TITLE=CARDIOGATE_AE,
        CARDIOGATE_DICOM_HOST="127.0.0.1",
        CARDIOGATE_DICOM_PORT=str(dicom_port),
        CARDIOGATE_HTTP_HOST="127.0.0.1",
        CARDIOGATE_HTTP_PORT=str(http_port),
        CARDIOGATE_MIN_FREE_DISK_MB="1",
        CARDIOGATE_LOG_LEVEL="WARNING",
        # keep the series assembler / inference pipeline out of the measurement
        CARDIOGATE_QUIET_SECONDS="3600",
    )
    if listener_processes is not None:
        env["CARDIOGATE_LISTENER_PROCESSES"] = str(listener_processes)
    # the service of this checkout, not whatever the venv's editable install points at
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "service"), os.environ.get("PYTHONPATH")) if p
    )
    python = REPO / ".venv" / "bin" / "python"
    exe = str(python) if python.exists() else sys.executable
    log_path = work / "cardiogate.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [exe, "-m", "cardiogate", "serve"],
            env=env,
            cwd=str(REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"cardiogate exited {server.returncode}: {log_path}")
            try:
                status, _ = _http_get(base + "/readyz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("cardiogate did not become ready in 90 s")
            time.sleep(0.1)
        time.sleep(1.5)  # the extra listener processes import and start accepting
        root = psutil.Process(server.pid)
        cpu0 = tree_cpu_seconds(root)
        with RssSampler(server.pid) as sampler:
            elapsed = send(storescu, CARDIOGATE_AE, dicom_port, dirs, work)
        cpu = tree_cpu_seconds(root) - cpu0
        hwm = tree_hwm_bytes(root)
        # auth is on by default: the service made its token in the data dir on start-up
        token = (data_dir / "api-token").read_text(encoding="ascii").strip()
        status, body = _http_get(base + "/api/v1/studies?limit=1000", timeout=30, token=token)
        if status != 200:
            raise RuntimeError(f"GET /api/v1/studies answered {status}")
        page = json.loads(body)
        recorded = sum(int(s["instance_count"]) for s in page["items"])
        if recorded != n:
            raise RuntimeError(f"cardiogate recorded {recorded} instances, expected {n}")
        server.send_signal(signal.SIGTERM)
        try:
            rc = server.wait(timeout=120)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError("cardiogate did not stop within 120 s of SIGTERM") from e
        if rc != 0:
            raise RuntimeError(f"cardiogate exited {rc} after SIGTERM; see {log_path}")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return _result(
        scenario,
        "cardiogate",
        rep,
        len(dirs),
        n,
        total_bytes,
        elapsed,
        sampler,
        hwm,
        cpu,
        {"studies": page["total"]},
    )


def run_storescp(
    storescp: str,
    storescu: str,
    dirs: list[Path],
    n: int,
    total_bytes: int,
    work: Path,
    fork: bool,
    scenario: str,
    rep: int,
) -> RunResult:
    out_dir = work / "storescp-out"
    out_dir.mkdir()
    port = free_port()
    cmd = [storescp, "-aet", STORESCP_AE, "-od", str(out_dir)]
    if fork:
        cmd.append("--fork")
    cmd.append(str(port))
    log_path = work / "storescp.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            cmd, env=dcmtk_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_listening(server.pid, port)
        root = psutil.Process(server.pid)
        cpu0 = tree_cpu_seconds(root)
        with RssSampler(server.pid) as sampler:
            elapsed = send(storescu, STORESCP_AE, port, dirs, work)
            time.sleep(0.2)  # let forked children finish and be reaped
        cpu = tree_cpu_seconds(root) - cpu0
        hwm = tree_hwm_bytes(root)
        stored = sum(1 for p in out_dir.iterdir() if p.is_file())
        if stored != n:
            raise RuntimeError(f"storescp stored {stored} files, expected {n}")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    return _result(
        scenario, "storescp", rep, len(dirs), n, total_bytes, elapsed, sampler, hwm, cpu, {}
    )


def _result(
    scenario: str,
    receiver: str,
    rep: int,
    associations: int,
    n: int,
    total_bytes: int,
    elapsed: float,
    sampler: RssSampler,
    hwm: int,
    cpu: float,
    extra: dict[str, Any],
) -> RunResult:
    return RunResult(
        scenario=scenario,
        receiver=receiver,
        rep=rep,
        associations=associations,
        instances=n,
        seconds=round(elapsed, 3),
        inst_per_s=round(n / elapsed, 1),
        mb_per_s=round(total_bytes / elapsed / 1e6, 1),
        peak_rss_mib=round(sampler.peak / 2**20, 1),
        hwm_sum_mib=round(hwm / 2**20, 1),
        cpu_seconds=round(cpu, 2),
        cpu_ms_per_instance=round(cpu / n * 1e3, 2),
        processes=sampler.max_procs,
        extra=extra,
    )


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (3)")
    parser.add_argument("--slices", type=int, default=500, help="number of CT slices (500)")
    parser.add_argument(
        "--listener-processes",
        type=int,
        default=None,
        help="CARDIOGATE_LISTENER_PROCESSES (default: the service's own, min(4, cpus))",
    )
    parser.add_argument("--data", type=Path, help="keep/reuse the synthetic slices here")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument(
        "--record",
        action="store_true",
        help="also keep the JSON as bench/records/ingest-cpu-<date>.json",
    )
    parser.add_argument("--dcmtk-bin", type=Path, help="directory of the dcmtk binaries")
    parser.add_argument(
        "--scenario",
        default="1,4,8",
        help="associations to run, comma-separated from 1,4,8 (default all; 'both' is 1,4)",
    )
    parser.add_argument(
        "--receiver", choices=[*RECEIVERS, "both"], default="both", help="receivers to run"
    )
    args = parser.parse_args(argv)
    wanted = {"1", "4"} if args.scenario == "both" else set(args.scenario.split(","))
    known = {str(a) for _, a in SCENARIOS}
    if not wanted or not wanted <= known:
        parser.error(f"--scenario takes a comma-separated subset of {sorted(known)}")
    if args.slices < 8 or args.reps < 1:
        parser.error("--slices must be >= 8 and --reps >= 1")

    storescu = find_dcmtk("storescu", args.dcmtk_bin)
    storescp = find_dcmtk("storescp", args.dcmtk_bin)
    machine = machine_description(storescu)
    scenarios = [s for s in SCENARIOS if str(s[1]) in wanted]
    receivers = [r for r in RECEIVERS if args.receiver in ("both", r)]

    with tempfile.TemporaryDirectory(prefix="cardiogate-bench-") as tmp_name:
        tmp = Path(tmp_name)
        data_root = args.data if args.data is not None else tmp / "data"
        splits = [a for _, a in scenarios if a > 1]
        all_dir, part_dirs, total_bytes = prepare_data(data_root, args.slices, splits)
        n = args.slices
        print(
            f"{n} files, {total_bytes / 1e6:.0f} MB ({total_bytes / n / 1024:.0f} KiB each); "
            f"{args.reps} interleaved repetition(s)"
        )
        results: list[RunResult] = []
        counter = 0
        for rep in range(1, args.reps + 1):
            for scenario, assocs in scenarios:
                dirs = [all_dir] if assocs == 1 else part_dirs[assocs]
                for receiver in receivers:
                    counter += 1
                    work = tmp / f"run{counter:03d}"
                    work.mkdir()
                    if receiver == "cardiogate":
                        r = run_cardiogate(
                            storescu,
                            dirs,
                            n,
                            total_bytes,
                            work,
                            args.listener_processes,
                            scenario,
                            rep,
                        )
                    else:
                        r = run_storescp(
                            storescp,
                            storescu,
                            dirs,
                            n,
                            total_bytes,
                            work,
                            assocs > 1,
                            scenario,
                            rep,
                        )
                    print(
                        f"  rep {rep} {scenario:15s} {receiver:10s} {r.inst_per_s:7.1f} inst/s "
                        f"{r.seconds:6.2f} s  peak RSS {r.peak_rss_mib:6.1f} MiB  "
                        f"CPU {r.cpu_ms_per_instance:5.2f} ms/inst  ({r.processes} procs)",
                        flush=True,
                    )
                    results.append(r)
                    shutil.rmtree(work, ignore_errors=True)

    summary = summarize(results, scenarios, receivers)
    print_report(machine, args, summary, n, total_bytes)
    if args.json is not None or args.record:
        payload = {
            "machine": machine,
            "config": {
                "reps": args.reps,
                "slices": n,
                "total_bytes": total_bytes,
                "listener_processes": args.listener_processes,
            },
            "runs": [asdict(r) for r in results],
            "summary": summary,
        }
        text = json.dumps(payload, indent=2) + "\n"
        if args.json is not None:
            args.json.write_text(text, encoding="utf-8")
            print(f"\nresults written to {args.json}")
        if args.record:
            record = REPO / "bench" / "records" / f"ingest-cpu-{machine['date_utc'][:10]}.json"
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(text, encoding="utf-8")
            print(f"record copied to {record}")
    return 0


def summarize(
    results: list[RunResult], scenarios: list[tuple[str, int]], receivers: list[str]
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    medians: dict[tuple[str, str], float] = {}
    for scenario, _ in scenarios:
        for receiver in receivers:
            rs = [r for r in results if r.scenario == scenario and r.receiver == receiver]
            if not rs:
                continue
            med = statistics.median(r.inst_per_s for r in rs)
            medians[(scenario, receiver)] = med
            rows.append(
                {
                    "scenario": scenario,
                    "receiver": receiver,
                    "inst_per_s": round(med, 1),
                    "inst_per_s_all": [r.inst_per_s for r in rs],
                    "mb_per_s": round(statistics.median(r.mb_per_s for r in rs), 1),
                    "peak_rss_mib": max(r.peak_rss_mib for r in rs),
                    "cpu_ms_per_instance": round(
                        statistics.median(r.cpu_ms_per_instance for r in rs), 2
                    ),
                }
            )
    for row in rows:
        base = medians.get((row["scenario"], "storescp"))
        row["vs_storescp"] = round(row["inst_per_s"] / base, 2) if base else None
    one, four, eight = (name for name, _ in SCENARIOS)
    headline: dict[str, Any] = {}
    if (one, "cardiogate") in medians and (one, "storescp") in medians:
        ratio = medians[(one, "cardiogate")] / medians[(one, "storescp")]
        headline["one_assoc_cardiogate_vs_storescp"] = round(ratio, 3)
        headline["one_assoc_aim_met"] = ratio >= AIM_ONE_ASSOC_VS_STORESCP
    if (one, "cardiogate") in medians and (four, "cardiogate") in medians:
        ratio = medians[(four, "cardiogate")] / medians[(one, "cardiogate")]
        headline["cardiogate_four_vs_one_assoc"] = round(ratio, 3)
        headline["four_assoc_aim_met"] = ratio >= AIM_FOUR_VS_ONE
    if (one, "cardiogate") in medians and (eight, "cardiogate") in medians:
        ratio = medians[(eight, "cardiogate")] / medians[(one, "cardiogate")]
        headline["cardiogate_eight_vs_one_assoc"] = round(ratio, 3)
    if (eight, "cardiogate") in medians and (eight, "storescp") in medians:
        ratio = medians[(eight, "cardiogate")] / medians[(eight, "storescp")]
        headline["eight_assoc_cardiogate_vs_storescp"] = round(ratio, 3)
    return {"rows": rows, "headline": headline}


def print_report(
    machine: dict[str, Any],
    args: argparse.Namespace,
    summary: dict[str, Any],
    n: int,
    total_bytes: int,
) -> None:
    print()
    print("## Machine")
    print()
    print(f"- date (UTC): {machine['date_utc']}")
    load = ", ".join(f"{x:.2f}" for x in machine["load_average_at_start"])
    print(f"- load average at start (1, 5, 15 min): {load}")
    print(f"- CPU: {machine['cpu']}")
    print(f"- cores: {machine['logical_cpus']} logical ({machine['physical_cores']} physical)")
    print(f"- RAM: {machine['ram_gib']} GiB")
    print(f"- Python: {machine['python']}, Linux {machine['kernel']}")
    print(f"- dcmtk: {machine['dcmtk']}")
    lp = args.listener_processes
    print(f"- cardiogate listener processes: {lp if lp is not None else 'default (min(4, cpus))'}")
    print()
    print(
        f"## Ingest: {n} CT slices 512x512 16-bit, {total_bytes / 1e6:.0f} MB, "
        f"storescu -> 127.0.0.1, TCP_NODELAY=1, median of {args.reps}"
    )
    print()
    print(
        "| scenario | receiver | inst/s | MB/s | peak RSS MiB | CPU ms/inst "
        "| vs storescp | inst/s per rep |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in summary["rows"]:
        ratio = "" if row["vs_storescp"] is None else f"{row['vs_storescp']:.2f}"
        reps = ", ".join(f"{v:.0f}" for v in row["inst_per_s_all"])
        print(
            f"| {row['scenario']} | {row['receiver']} | {row['inst_per_s']:.1f} "
            f"| {row['mb_per_s']:.1f} | {row['peak_rss_mib']:.1f} "
            f"| {row['cpu_ms_per_instance']:.2f} | {ratio} | {reps} |"
        )
    h = summary["headline"]
    print()
    if "one_assoc_cardiogate_vs_storescp" in h:
        ok = "met" if h["one_assoc_aim_met"] else "MISSED"
        print(
            f"- one association, cardiogate / storescp: "
            f"{h['one_assoc_cardiogate_vs_storescp']:.2f} "
            f"(aim >= {AIM_ONE_ASSOC_VS_STORESCP}: {ok})"
        )
    if "cardiogate_four_vs_one_assoc" in h:
        ok = "met" if h["four_assoc_aim_met"] else "MISSED"
        print(
            f"- cardiogate, 4 associations / 1 association: "
            f"{h['cardiogate_four_vs_one_assoc']:.2f} (aim >= {AIM_FOUR_VS_ONE}: {ok})"
        )
    if "cardiogate_eight_vs_one_assoc" in h:
        print(
            f"- cardiogate, 8 associations / 1 association: "
            f"{h['cardiogate_eight_vs_one_assoc']:.2f}"
        )
    if "eight_assoc_cardiogate_vs_storescp" in h:
        print(
            f"- 8 associations, cardiogate / storescp --fork: "
            f"{h['eight_assoc_cardiogate_vs_storescp']:.2f}"
        )
    print(
        "\nPeak RSS: summed RSS of the receiver's process tree (cardiogate: main + listener "
        "processes; storescp --fork: parent + children), sampled every 50 ms, max over reps. "
        "CPU: user+sys of that tree during the transfer, per instance."
    )


if __name__ == "__main__":
    sys.exit(main())

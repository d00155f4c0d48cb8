"""GPU power logs written by other tools, and the energy of a time window read from them.

Three formats, detected from the file's content (docs/SCHEMA.md describes each field by field):

- **nvidia-smi CSV**: `nvidia-smi --query-gpu=timestamp,index,power.draw --format=csv -lms 100` (any
  interval; `nounits` or not; extra columns such as `uuid`, `name`, `power.draw.instant` allowed). Its
  timestamps are local time without a zone.
- **DCGM exporter text**: scrapes of dcgm-exporter's `/metrics` (Prometheus text format), each sample
  with its own timestamp (milliseconds since the epoch, the format's optional last field) or after a
  line holding only the scrape's time (`date +%s.%N` or `date -Ins` output). Uses
  `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION` (mJ counter) and `DCGM_FI_DEV_POWER_USAGE` (W).
- **Zeus JSON**: the power timeline of Zeus's `PowerMonitor` saved with `json.dump`
  (`{"0": [[unix_time, watts], ...], ...}`), or all its domains (`{"device_instant": {...}, ...}`).

A window's energy comes from an energy counter where the log has one that brackets the window (it
integrates through gaps between samples), else from the power samples by the trapezoid rule. Gaps
between samples longer than MAX_GAP_FACTOR sampling intervals are not covered: the covered share of the
window is reported, and the uncovered part is filled with the mean power of the covered part.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

import numpy as np

from ..errors import DataError

MAX_GAP_FACTOR = 5  # a gap longer than 5 median sampling intervals is missing data, not slow sampling
# nvidia-smi power columns, best first: instant power where the driver has it; power.draw is a one-second
# average on recent drivers (Ampere and newer) and the instantaneous reading on older ones.
NVSMI_POWER_COLUMNS = ("power.draw.instant", "power.draw", "power.draw.average")
NVSMI_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S")
NVSMI_MISSING = ("[N/A]", "[Not Supported]", "[Unknown Error]", "N/A", "")
DCGM_POWER = "DCGM_FI_DEV_POWER_USAGE"
DCGM_ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
ZEUS_DOMAINS = ("device_instant", "device_average")  # memory_average is the memory's share only: not used


@dataclass
class Series:
    """One GPU's samples: times (seconds since the epoch, sorted), power (W) and/or an energy counter (mJ)."""

    gpu: str
    name: str | None = None
    power_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    power_w: np.ndarray = field(default_factory=lambda: np.empty(0))
    energy_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    energy_mj: np.ndarray = field(default_factory=lambda: np.empty(0))

    def span(self) -> tuple[float, float]:
        times = np.concatenate([self.power_t, self.energy_t])
        return float(times.min()), float(times.max())


@dataclass
class PowerLog:
    path: Path
    kind: str  # nvidia-smi, dcgm or zeus
    series: dict[str, Series]
    dropped_lines: int = 0  # a truncated last line (the logger was stopped mid-write)

    def span(self) -> tuple[float, float]:
        spans = [s.span() for s in self.series.values()]
        return min(a for a, _ in spans), max(b for _, b in spans)

    def gpu_name(self) -> str | None:
        names = {s.name for s in self.series.values() if s.name}
        return names.pop() if len(names) == 1 else None

    def select(self, gpus) -> "PowerLog":
        """Only the GPUs named (indices or UUIDs as the log names them); all when `gpus` is None."""
        if gpus is None:
            return self
        out = {}
        for g in gpus:
            key = str(g)
            if key not in self.series:
                known = ", ".join(sorted(self.series))
                raise DataError(f"the power log has no GPU '{key}' (it has {known})", path=self.path)
            out[key] = self.series[key]
        return PowerLog(self.path, self.kind, out, self.dropped_lines)


@dataclass(frozen=True)
class WindowEnergy:
    energy_j: float | None  # all GPUs together; None where no sample covers the window
    coverage: float  # share of the window covered by the log (the smallest over the GPUs)
    method: str  # counter, power or mixed
    filled_j: float  # energy estimated for the uncovered part (mean power of the covered part)


def parse_tz(text: str | None) -> tzinfo | None:
    """A zone for timestamps written without one: None (this machine's local zone), 'UTC', or '+02:00'."""
    if text is None:
        return None
    t = text.strip().upper()
    if t in ("UTC", "Z", "GMT"):
        return timezone.utc
    m = re.fullmatch(r"(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?", t)
    if not m:
        raise DataError(f"--tz expects UTC or an offset such as +02:00 or -05:00, got '{text[:40]}'")
    sign = 1 if m.group(1) == "+" else -1
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes >= 60:
        raise DataError(f"--tz offset out of range: '{text[:40]}'")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def local_epoch(naive: datetime, tz: tzinfo | None) -> float:
    """Seconds since the epoch of a time written without a zone, read in `tz` (None: this machine's zone)."""
    return (naive.astimezone() if tz is None else naive.replace(tzinfo=tz)).timestamp()


def show_time(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def read_power_log(path, tz: tzinfo | None = None, offset_s: float = 0.0) -> PowerLog:
    """Read a power log of any supported format; `offset_s` is added to its times (a known clock skew)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise DataError("not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the power log ({type(exc).__name__})", path=path) from None
    head = text.lstrip()[:4096]
    if head.startswith("{"):
        log = _read_zeus(path, text)
    elif "DCGM_FI_" in head:
        log = _read_dcgm(path, text)
    elif "timestamp" in head.splitlines()[0].lower() if head else False:
        log = _read_nvsmi(path, text, tz)
    else:
        raise DataError("not a power log this tool reads: expected an nvidia-smi CSV with a header row "
                        "(--query-gpu=timestamp,index,power.draw --format=csv), a DCGM exporter dump or a Zeus "
                        "power-timeline JSON", path=path)
    if not log.series or all(len(s.power_t) + len(s.energy_t) == 0 for s in log.series.values()):
        raise DataError("the power log holds no power or energy sample", path=path)
    if offset_s:
        for s in log.series.values():
            s.power_t = s.power_t + offset_s
            s.energy_t = s.energy_t + offset_s
    return log


# -- nvidia-smi ---------------------------------------------------------------------------------------

def _nvsmi_column(name: str) -> str:
    return re.sub(r"\s*\[[^\]]*\]\s*$", "", name.strip()).lower()


def _nvsmi_number(cell: str) -> float | None:
    cell = cell.strip()
    if cell in NVSMI_MISSING:
        return None
    cell = re.sub(r"\s*(W|mW|mJ|J)$", "", cell)
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(cell) from None
    return value if math.isfinite(value) else None


def _nvsmi_time(cell: str, tz) -> float:
    cell = cell.strip()
    for fmt in NVSMI_TIME_FORMATS:
        try:
            return local_epoch(datetime.strptime(cell, fmt), tz)
        except (ValueError, OverflowError, OSError):  # not this format, or a date no clock reaches
            continue
    raise ValueError(cell)


def _read_nvsmi(path: Path, text: str, tz) -> PowerLog:
    lines = text.splitlines()
    header = [_nvsmi_column(c) for c in lines[0].split(",")]
    if "timestamp" not in header:
        raise DataError("nvidia-smi CSV: the first row must be the header (run without 'noheader')", path=path)
    power_col = next((c for c in NVSMI_POWER_COLUMNS if c in header), None)
    if power_col is None:
        raise DataError(f"nvidia-smi CSV: no power column; query one of {', '.join(NVSMI_POWER_COLUMNS)}",
                        path=path)
    i_t, i_p = header.index("timestamp"), header.index(power_col)
    i_gpu = header.index("index") if "index" in header else header.index("uuid") if "uuid" in header else None
    i_name = header.index("name") if "name" in header else None
    raw: dict[str, list] = {}
    names: dict[str, str] = {}
    dropped = 0
    last = len(lines) - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    for n, line in enumerate(lines[1:], start=1):
        if not line.strip() or [_nvsmi_column(c) for c in line.split(",")] == header:
            continue  # blank lines and repeated headers (logs concatenated)
        cells = [c.strip() for c in line.split(",")]
        try:
            if len(cells) != len(header):
                raise ValueError(f"{len(cells)} fields, expected {len(header)}")
            t = _nvsmi_time(cells[i_t], tz)
            p = _nvsmi_number(cells[i_p])
        except ValueError as exc:
            if n == last:  # the logger was stopped in the middle of a line
                dropped += 1
                continue
            raise DataError(f"nvidia-smi CSV: cannot read '{str(exc)[:40]}' (expected a timestamp like "
                            "2024/01/15 10:23:45.123 and a power like 71.23 W)", path=path, row=n) from None
        gpu = cells[i_gpu] if i_gpu is not None else "0"
        if i_name is not None:
            names[gpu] = cells[i_name]
        if p is not None:
            raw.setdefault(gpu, []).append((t, p))
        else:
            raw.setdefault(gpu, [])
    series = {}
    for gpu, samples in raw.items():
        arr = np.array(sorted(samples), dtype=float).reshape(-1, 2)
        series[gpu] = Series(gpu, _gpu_name(names.get(gpu)), power_t=arr[:, 0], power_w=arr[:, 1])
    return PowerLog(path, "nvidia-smi", {k: v for k, v in series.items() if len(v.power_t)}, dropped)


def _gpu_name(name: str | None) -> str | None:
    if not name:
        return None
    for prefix in ("NVIDIA ", "Nvidia "):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name.strip() or None


# -- DCGM exporter --------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?\s*$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _labels(text: str) -> dict:
    return {m.group(1): m.group(2).replace('\\"', '"').replace("\\\\", "\\") for m in _LABEL.finditer(text or "")}


def _marker_time(line: str) -> float | None:
    """A line holding only a time (epoch seconds, or ISO 8601 with a zone): the time of the scrape below it."""
    s = line.strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", s):
        return float(s)
    try:
        when = datetime.fromisoformat(s.replace(",", "."))
        return when.timestamp() if when.tzinfo is not None else None  # zone-less: ambiguous, not a time line
    except (ValueError, OverflowError, OSError):
        return None


def _read_dcgm(path: Path, text: str) -> PowerLog:
    power: dict[str, list] = {}
    energy: dict[str, list] = {}
    names: dict[str, str] = {}
    scrape_time = None
    hosts = set()
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = _SAMPLE.match(s)
        if m is None or not m.group(1).startswith("DCGM_"):
            t = _marker_time(s)
            if t is not None:
                scrape_time = t
                continue
            if m is None:
                raise DataError("DCGM dump: not a metric sample or a time line", path=path, row=n)
            continue  # another exporter's metric in the same scrape
        metric, labels, value, stamp = m.group(1), _labels(m.group(3)), m.group(4), m.group(5)
        if metric not in (DCGM_POWER, DCGM_ENERGY):
            continue
        try:
            t = int(stamp) / 1000.0 if stamp is not None else scrape_time
        except OverflowError:
            raise DataError(f"DCGM dump: timestamp {stamp[:20]}... is out of range", path=path, row=n) from None
        if t is None:
            raise DataError("DCGM dump: a sample without a time; give each sample its timestamp (milliseconds) or "
                            "precede each scrape with a line holding `date +%s.%N`", path=path, row=n)
        try:
            v = float(value)
        except ValueError:
            raise DataError(f"DCGM dump: value '{value[:30]}' is not a number", path=path, row=n) from None
        hosts.add(labels.get("Hostname", ""))
        rows.append((metric, labels, t, v))
    several_hosts = len(hosts) > 1
    for metric, labels, t, v in rows:
        gpu = labels.get("gpu", labels.get("UUID", "0"))
        if several_hosts:
            gpu = f"{labels.get('Hostname', '')}:{gpu}"
        names[gpu] = labels.get("modelName", names.get(gpu, ""))
        if math.isfinite(v):
            (power if metric == DCGM_POWER else energy).setdefault(gpu, []).append((t, v))
    series = {}
    for gpu in sorted(set(power) | set(energy)):
        p = np.array(sorted(power.get(gpu, [])), dtype=float).reshape(-1, 2)
        e = np.array(sorted(energy.get(gpu, [])), dtype=float).reshape(-1, 2)
        series[gpu] = Series(gpu, _gpu_name(names.get(gpu)), p[:, 0], p[:, 1], e[:, 0], e[:, 1])
    return PowerLog(path, "dcgm", series)


# -- Zeus -----------------------------------------------------------------------------------------------

def _read_zeus(path: Path, text: str) -> PowerLog:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON (line {exc.lineno}): {exc.msg}", path=path) from None
    if not isinstance(data, dict):
        raise DataError("Zeus power timeline: expected an object mapping GPU index to [[time, watts], ...]", path=path)
    domain = next((d for d in ZEUS_DOMAINS if d in data), None)
    if domain is not None:
        data = data[domain]
    elif any(k in data for k in ("memory_average",)):
        raise DataError(f"Zeus power timeline: no device power domain ({', '.join(ZEUS_DOMAINS)})", path=path)
    series = {}
    for gpu, samples in data.items():
        if not isinstance(samples, list) or any(not isinstance(s, (list, tuple)) or len(s) != 2 for s in samples):
            raise DataError(f"Zeus power timeline: GPU '{str(gpu)[:20]}' must hold [[unix_time, watts], ...]",
                            path=path)
        try:
            arr = np.array(sorted((float(t), float(w)) for t, w in samples), dtype=float).reshape(-1, 2)
        except (TypeError, ValueError):
            raise DataError(f"Zeus power timeline: GPU '{str(gpu)[:20]}' has a non-numeric sample", path=path) from None
        arr = arr[np.isfinite(arr).all(axis=1)]
        if len(arr):
            series[str(gpu)] = Series(str(gpu), None, power_t=arr[:, 0], power_w=arr[:, 1])
    return PowerLog(path, "zeus", series)


# -- energy of a window -----------------------------------------------------------------------------------

def _max_gap(t: np.ndarray) -> float:
    if len(t) < 2:
        return 0.0
    return MAX_GAP_FACTOR * float(np.median(np.diff(t)))


def _counter_energy(s: Series, t0: float, t1: float) -> float | None:
    """mJ -> J between t0 and t1 from the counter, where samples bracket both ends closely and it never resets."""
    t, e = s.energy_t, s.energy_mj
    if len(t) < 2 or t[0] > t0 or t[-1] < t1 or np.any(np.diff(e) < 0):
        return None
    gap = _max_gap(t)
    for edge in (t0, t1):
        i = int(np.searchsorted(t, edge))
        lo, hi = t[max(i - 1, 0)], t[min(i, len(t) - 1)]
        if hi - lo > gap and lo != edge and hi != edge:
            return None
    return (float(np.interp(t1, t, e)) - float(np.interp(t0, t, e))) / 1000.0


def _power_energy(s: Series, t0: float, t1: float) -> tuple[float, float]:
    """(energy J over the covered part of [t0, t1], covered seconds) from power samples by the trapezoid rule."""
    t, p = s.power_t, s.power_w
    if len(t) < 2 or t[-1] <= t0 or t[0] >= t1:
        return 0.0, 0.0
    gap = _max_gap(t)
    energy = covered = 0.0
    for a, b, pa, pb in zip(t[:-1], t[1:], p[:-1], p[1:]):
        lo, hi = max(a, t0), min(b, t1)
        if hi <= lo or b - a > gap:
            continue
        f_lo = pa + (pb - pa) * (lo - a) / (b - a)
        f_hi = pa + (pb - pa) * (hi - a) / (b - a)
        energy += 0.5 * (f_lo + f_hi) * (hi - lo)
        covered += hi - lo
    return energy, covered


def window_energy(log: PowerLog, t0: float, t1: float) -> WindowEnergy:
    """Energy of all the log's GPUs over [t0, t1] (seconds since the epoch)."""
    length = t1 - t0
    if not length > 0:
        raise ValueError("empty window")
    total = filled = 0.0
    coverages, methods = [], set()
    for s in log.series.values():
        e = _counter_energy(s, t0, t1)
        if e is not None:
            total += e
            coverages.append(1.0)
            methods.add("counter")
            continue
        e, covered = _power_energy(s, t0, t1)
        coverages.append(covered / length)
        methods.add("power")
        if covered > 0:
            fill = e / covered * (length - covered)
            total += e + fill
            filled += fill
    coverage = min(coverages) if coverages else 0.0
    method = methods.pop() if len(methods) == 1 else "mixed"
    return WindowEnergy(total if coverage > 0 else None, coverage, method, filled)

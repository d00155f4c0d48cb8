"""Named measurement windows returning typed results with units."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .devices import GpuDevice, NvmlGpu


@dataclass(frozen=True)
class Measurement:
    """One window: wall time (s) and energy (J) per GPU; energy None where no counter exists."""

    name: str
    time_s: float
    energy_j: dict[int, float | None] = field(default_factory=dict)

    @property
    def total_energy_j(self) -> float | None:
        vals = list(self.energy_j.values())
        if not vals or any(v is None for v in vals):
            return None
        return float(sum(vals))


class EnergyMonitor:
    """begin_window(name) ... end_window(name) -> Measurement over the given GPUs."""

    def __init__(self, gpus: list[GpuDevice], sync=None):
        self.gpus = list(gpus)
        self._sync = sync or (lambda: None)
        self._open: dict[str, tuple[float, dict]] = {}

    def begin_window(self, name: str) -> None:
        if name in self._open:
            raise ValueError(f"window {name!r} is already open")
        self._sync()
        self._open[name] = (time.perf_counter(), {g.index: g.energy_mj() for g in self.gpus})

    def end_window(self, name: str) -> Measurement:
        if name not in self._open:
            raise ValueError(f"window {name!r} was not opened")
        self._sync()
        t1 = time.perf_counter()
        t0, e0 = self._open.pop(name)
        energy = {}
        for g in self.gpus:
            e1 = g.energy_mj()
            energy[g.index] = None if e1 is None or e0[g.index] is None else (e1 - e0[g.index]) / 1000.0
        return Measurement(name, t1 - t0, energy)

    def idle_power_w(self, seconds: float = 1.0) -> float | None:
        """Mean power of all GPUs over `seconds` of doing nothing (the static baseline)."""
        self.begin_window("_idle")
        time.sleep(seconds)
        m = self.end_window("_idle")
        return None if m.total_energy_j is None else m.total_energy_j / m.time_s


class ZeusEnergyMonitor:
    """The same windows through Zeus's ZeusMonitor (used when the `zeus` package is installed)."""

    def __init__(self, gpu_indices: list[int], sync=None):
        from zeus.monitor import ZeusMonitor  # optional dependency

        self._zeus = ZeusMonitor(gpu_indices=list(gpu_indices))
        self._sync = sync or (lambda: None)
        self.gpu_indices = list(gpu_indices)

    def begin_window(self, name: str) -> None:
        self._sync()
        self._zeus.begin_window(name)

    def end_window(self, name: str) -> Measurement:
        self._sync()
        m = self._zeus.end_window(name)
        energy = {int(i): (None if e is None else float(e)) for i, e in (m.gpu_energy or {}).items()}
        return Measurement(name, float(m.time), energy)

    def idle_power_w(self, seconds: float = 1.0) -> float | None:
        self.begin_window("_idle")
        time.sleep(seconds)
        m = self.end_window("_idle")
        return None if m.total_energy_j is None else m.total_energy_j / m.time_s


def make_monitor(gpus: list[GpuDevice], sync=None):
    """Zeus's monitor when it is installed and real GPUs are measured, else NVML counters directly."""
    if gpus and all(isinstance(g, NvmlGpu) for g in gpus):
        try:
            return ZeusEnergyMonitor([g.index for g in gpus], sync)
        except ImportError:
            pass
    return EnergyMonitor(gpus, sync)


# The energy counter moves in steps (NVML updates it every 20-100 ms on recent GPUs), so each reading may be
# up to one step old: a window's energy is off by at most one step's worth. A window of STEPS_PER_WINDOW
# steps keeps that error below 1 / STEPS_PER_WINDOW = 1%.
RESOLUTION_TARGET = 0.01
STEPS_PER_WINDOW = round(1 / RESOLUTION_TARGET)


def counter_update_period_s(gpus: list[GpuDevice], seconds: float = 0.5) -> float | None:
    """The longest, over `gpus`, of the mean time between changes of the energy counter, found by polling all
    of them for `seconds`; None where a GPU has no counter. Polling at idle is enough: the counter's update
    period is a property of the driver, not of the load."""
    last = [g.energy_mj() for g in gpus]
    if not gpus or any(v is None for v in last):
        return None
    changes: list[list[float]] = [[] for _ in gpus]
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i, g in enumerate(gpus):
            now, value = time.perf_counter(), g.energy_mj()
            if value != last[i]:
                changes[i].append(now)
                last[i] = value
    # (last change - first change) / steps between them: a late poll shortens one step and lengthens the
    # next, so only the two ends carry polling jitter; a poll late by a whole step misses one, which can only
    # lengthen the estimate (and the window: the safe side). A counter that moved less than twice: >= `seconds`.
    return max(((c[-1] - c[0]) / (len(c) - 1) if len(c) >= 3 else seconds) for c in changes)


def min_window_s(update_period_s: float | None, floor_s: float) -> float:
    """Shortest steady-state window whose energy the counter resolves to RESOLUTION_TARGET, at least `floor_s`."""
    return max(float(floor_s), STEPS_PER_WINDOW * (update_period_s or 0.0))

"""GPU devices behind one interface, a factory, and a fake for tests (no `if cuda` scattered around).

NVML's total-energy counter (millijoules since driver load, Volta and newer) gives the energy of a
window as the difference of two readings; it includes static power, as the energy the GPU draws.
"""
from __future__ import annotations

import abc
import time

from ..errors import NoGpuError


class GpuDevice(abc.ABC):
    index: int
    name: str

    @abc.abstractmethod
    def energy_mj(self) -> float | None:
        """Total energy counter in millijoules, or None where the GPU has none."""

    @abc.abstractmethod
    def power_w(self) -> float | None:
        """Instantaneous board power in watts, or None."""

    def info(self) -> dict:
        return {"name": self.name, "index": self.index}


class NvmlGpu(GpuDevice):
    def __init__(self, index: int, nvml):
        self.index = index
        self._nvml = nvml
        self._h = nvml.nvmlDeviceGetHandleByIndex(index)
        name = nvml.nvmlDeviceGetName(self._h)
        self.name = name.decode() if isinstance(name, bytes) else str(name)

    def energy_mj(self):
        try:
            return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h))
        except self._nvml.NVMLError:
            return None

    def power_w(self):
        try:
            return self._nvml.nvmlDeviceGetPowerUsage(self._h) / 1000.0
        except self._nvml.NVMLError:
            return None

    def info(self) -> dict:
        n = self._nvml
        out = {"name": self.name, "index": self.index}
        for key, fn in (("driver", lambda: n.nvmlSystemGetDriverVersion()),
                        ("uuid", lambda: n.nvmlDeviceGetUUID(self._h)),
                        ("power_limit_w", lambda: n.nvmlDeviceGetEnforcedPowerLimit(self._h) / 1000.0),
                        ("sm_clock_mhz", lambda: n.nvmlDeviceGetClockInfo(self._h, n.NVML_CLOCK_SM)),
                        ("mem_clock_mhz", lambda: n.nvmlDeviceGetClockInfo(self._h, n.NVML_CLOCK_MEM))):
            try:
                v = fn()
                out[key] = v.decode() if isinstance(v, bytes) else v
            except Exception:  # optional figures; absence is not an error
                pass
        return out


class FakeGpu(GpuDevice):
    """A GPU whose counter integrates a given power over wall-clock time (tests, dry runs)."""

    def __init__(self, index: int = 0, name: str = "Fake GPU", power_w: float = 300.0, has_counter: bool = True):
        self.index, self.name, self._p, self._has = index, name, power_w, has_counter
        self._t0 = time.perf_counter()

    def info(self) -> dict:
        return {**super().info(), "uuid": f"GPU-fake-{self.index}"}

    def energy_mj(self):
        return (time.perf_counter() - self._t0) * self._p * 1000.0 if self._has else None

    def power_w(self):
        return self._p


def open_gpus(indices=None) -> list[GpuDevice]:
    """NVIDIA GPUs through NVML; raises NoGpuError saying why when there are none."""
    try:
        import pynvml as nvml
    except ImportError:
        raise NoGpuError("no NVIDIA GPU found: nvidia-ml-py is not installed (pip install 'energylens[gpu]')")
    try:
        nvml.nvmlInit()
    except Exception as exc:
        raise NoGpuError(f"no NVIDIA GPU found: NVML could not start ({exc}); "
                         "use --allow-cpu to run the sweep on the CPU without energy")
    count = nvml.nvmlDeviceGetCount()
    if count == 0:
        raise NoGpuError("no NVIDIA GPU found by NVML; use --allow-cpu to run the sweep on the CPU without energy")
    indices = list(range(count)) if indices is None else list(indices)
    bad = [i for i in indices if i >= count]
    if bad:
        raise NoGpuError(f"GPU index {bad[0]} requested but NVML sees {count} GPU(s)")
    return [NvmlGpu(i, nvml) for i in indices]

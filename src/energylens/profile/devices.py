"""GPU devices behind one interface, a factory, and a fake for tests (no `if cuda` scattered around).

NVML's total-energy counter (millijoules since driver load, Volta and newer) gives the energy of a
window as the difference of two readings; it includes static power, as the energy the GPU draws.
"""
from __future__ import annotations

import abc
import time

from ..errors import EnergyLensError, NoGpuError


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
    def __init__(self, index: int, nvml, handle=None):
        self.index = index
        self._nvml = nvml
        self._h = nvml.nvmlDeviceGetHandleByIndex(index) if handle is None else handle
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
    """A GPU whose counter integrates a given power over wall-clock time (tests, dry runs).

    `update_period_s` > 0 makes the counter move in steps, as NVML's does (every 20-100 ms on
    recent GPUs), so that a window shorter than the steps misses energy as a real one would."""

    def __init__(self, index: int = 0, name: str = "Fake GPU", power_w: float = 300.0, has_counter: bool = True,
                 update_period_s: float = 0.0):
        self.index, self.name, self._p, self._has = index, name, power_w, has_counter
        self._period = float(update_period_s)
        self._t0 = time.perf_counter()

    def info(self) -> dict:
        return {**super().info(), "uuid": f"GPU-fake-{self.index}"}

    def energy_mj(self):
        if not self._has:
            return None
        elapsed = time.perf_counter() - self._t0
        if self._period > 0:
            elapsed = (elapsed // self._period) * self._period
        return elapsed * self._p * 1000.0

    def power_w(self):
        return self._p


NO_GPU_HINT = "use --allow-cpu to run without energy (timings only)"


def open_gpus(indices=None, extra: str = "gpu") -> list[GpuDevice]:
    """NVIDIA GPUs through NVML, by index or by UUID (`GPU-...`); raises NoGpuError saying why when there
    are none, and how to go on without them. `extra`: the extra of pyproject.toml that brings nvidia-ml-py for
    the command asking (gpu; endpoint for profile --endpoint), named in the install hint."""
    try:
        import pynvml as nvml
    except ImportError:
        raise NoGpuError(f"no NVIDIA GPU found: nvidia-ml-py is not installed (pip install 'energylens[{extra}]' on "
                         f"a machine with an NVIDIA GPU), or {NO_GPU_HINT}")
    try:
        nvml.nvmlInit()
    except Exception as exc:
        raise NoGpuError(f"no NVIDIA GPU found: NVML could not start ({exc}); {NO_GPU_HINT}")
    count = nvml.nvmlDeviceGetCount()
    if count == 0:
        raise NoGpuError(f"no NVIDIA GPU found by NVML; {NO_GPU_HINT}")
    wanted = list(range(count)) if indices is None else list(indices)
    out = []
    for want in wanted:
        if isinstance(want, str) and not want.strip().isdigit():
            try:
                handle = nvml.nvmlDeviceGetHandleByUUID(want.strip())
            except nvml.NVMLError:
                raise NoGpuError(f"GPU {want!r} requested but NVML knows no GPU with that UUID") from None
            out.append(NvmlGpu(int(nvml.nvmlDeviceGetIndex(handle)), nvml, handle))
            continue
        i = int(want)
        if i >= count:
            raise NoGpuError(f"GPU index {i} requested but NVML sees {count} GPU(s)")
        out.append(NvmlGpu(i, nvml))
    return out


def parse_gpu_ids(text: str, option: str = "--gpus") -> list:
    """GPU indices (whole numbers) or UUIDs (`GPU-...`, as nvidia-smi -L prints them), comma-separated, each once."""
    items = [t.strip() for t in str(text).split(",")]
    if not items or any(not t for t in items):
        raise EnergyLensError(f"{option} expects GPU indices or UUIDs, comma-separated (e.g. 0,1 or GPU-5f3a...), "
                              f"got '{text}'")
    out = []
    for t in items:
        if t.isascii() and t.isdigit():
            out.append(int(t))
        elif t.upper().startswith(("GPU-", "MIG-")) and len(t) <= 100 and t.isprintable():
            out.append(t)
        else:
            raise EnergyLensError(f"{option} expects GPU indices (0, 1, ...) or UUIDs (GPU-...), got '{t[:60]}'")
    return list(dict.fromkeys(out))

"""Profiling sweeps on a Ray cluster: one Ray task per configuration, every result recorded by the driver.

Each configuration becomes a Ray task that asks for tp x pp x dp GPUs on one node and runs the local
sweep's own measurement (`sweep.measure_row`: engine, monitor, warm-up, repeats) on the GPUs Ray gave
it. Rows stream back to the driver, which records each as it arrives through the local sweep's
functions (atomic appends, failed-configuration records, resume). A task whose worker process or node
is lost is retried by Ray up to `retries` times, then recorded as failed with the reason; other tasks
are not affected. Idle power is measured in each task, on its own GPUs. Ray is imported here only, and
only when a cluster sweep runs.
"""
from __future__ import annotations

import socket

from ..errors import EnergyLensError, NoGpuError
from .devices import open_gpus
from .monitor import make_monitor
from .sweep import _key, failure_reason, gpus_needed, measure_row, pending, record_failed, record_measured

EXTRA = "pip install 'energylens[cluster]'"


def parse_cluster(text: str) -> str | None:
    """The address in `--cluster ray[=ADDRESS]`; None means: start a local Ray."""
    kind, sep, address = str(text).strip().partition("=")
    if kind.strip().lower() != "ray" or (sep and not address.strip()):
        raise EnergyLensError(f"--cluster expects ray or ray=ADDRESS (e.g. ray=head:6379), got {str(text)[:60]!r}")
    return address.strip() or None


def import_ray():
    """The `ray` module, or a one-line error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise EnergyLensError(f"--cluster ray needs Ray, an optional extra: {EXTRA}") from None
    return ray


def connect(address: str | None = None):
    """Ray, connected to the cluster at `address` (or a local one started now); an existing connection is kept."""
    ray = import_ray()
    if not ray.is_initialized():
        try:
            # Worker output stays in Ray's log files: the driver prints progress and one summary line.
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except Exception as exc:  # a wrong address, a cluster of another Ray version, ...
            where = f"at {address}" if address else "locally"
            raise EnergyLensError(f"--cluster: cannot start or reach Ray {where}: {failure_reason(exc)}") from None
    return ray


def largest_node_gpus(ray) -> int:
    """The most GPUs any live node of the cluster has (a configuration runs on one node)."""
    return int(max((n.get("Resources", {}).get("GPU", 0) for n in ray.nodes() if n.get("Alive")), default=0))


def _open_assigned_gpus(ids) -> list:
    """The GPUs Ray assigned to this task, opened through NVML (by index, or by UUID where Ray names UUIDs)."""
    if all(str(i).isdigit() for i in ids):
        return open_gpus([int(i) for i in ids])
    wanted = {str(i) for i in ids}
    return [g for g in open_gpus() if g.info().get("uuid") in wanted]


def measure_on_node(cfg: dict, engine_factory, repeats: int, warmup: int, idle_seconds: float, allow_cpu: bool) -> dict:
    """Body of one Ray task: measure `cfg` on this task's GPUs.

    Returns {"row": row}, {"failed": reason} (the configuration failed, as in the local sweep) or
    {"error": message} (bad input or set-up that stops the sweep, as an EnergyLensError does locally)."""
    import ray

    node = socket.gethostname()
    try:
        ids = ray.get_gpu_ids()
        try:
            gpus = _open_assigned_gpus(ids) if ids else []
        except NoGpuError:
            if not allow_cpu:
                raise
            gpus = []  # Ray's GPU resources were declared, not found: run on the CPU as --allow-cpu says
        engine = engine_factory(device="auto" if gpus else "cpu")
        monitor = make_monitor(gpus, sync=engine.sync)
        idle = monitor.idle_power_w(idle_seconds) if gpus and idle_seconds > 0 else None
        return {"row": measure_row(engine, monitor, gpus, cfg, idle_w=idle, repeats=repeats, warmup=warmup)}
    except EnergyLensError as exc:
        return {"error": f"node {node}: {exc}"}
    except Exception as exc:  # recorded by the driver; the sweep goes on
        return {"failed": failure_reason(exc)}


def _lost_reason(ray, exc: BaseException, retries: int) -> str:
    if isinstance(exc, ray.exceptions.RayTaskError):  # raised inside the task, not a lost worker
        return failure_reason(exc.cause if getattr(exc, "cause", None) is not None else exc)
    return f"worker or node lost, {retries} retries spent: {failure_reason(exc)}"


def run_ray_sweep(configs: list[dict], engine_factory, output, *, address: str | None = None, repeats: int = 3,
                  warmup: int = 1, idle_seconds: float = 2.0, retries: int = 2, retry_failed: bool = False,
                  allow_cpu: bool = False, progress=None) -> dict:
    """The sweep of `run_sweep`, spread over a Ray cluster; returns the same counts.

    engine_factory(device=...) builds the engine on the worker (e.g. functools.partial(make_engine, "vllm")).
    On a cluster without GPUs, tasks ask for none and run on the CPU when `allow_cpu`."""
    if repeats < 1:
        raise EnergyLensError("--repeats must be >= 1")
    if retries < 0:
        raise EnergyLensError(f"--retries expects a whole number >= 0, got {retries}")
    todo, counts, failed_before = pending(configs, output, retry_failed)
    if not todo:
        if progress:
            progress(0, 0, None)
        return counts
    ray = connect(address)
    largest = largest_node_gpus(ray)
    if largest == 0 and not allow_cpu:
        raise NoGpuError("the Ray cluster has no GPU resource; use --allow-cpu to run the sweep on its CPUs without energy")
    task = ray.remote(measure_on_node)
    inflight = {}
    try:
        for cfg in todo:
            need = gpus_needed(cfg) if largest else 0
            if need > largest:  # Ray would queue it forever
                record_failed(output, cfg, f"needs {need} GPUs on one node; the largest node of the Ray cluster has "
                              f"{largest}", _key(cfg) in failed_before)
                counts["failed"] += 1
                continue
            ref = task.options(num_gpus=need, max_retries=retries, retry_exceptions=False,
                               name=f"energylens-profile b={cfg['batch_size']} tp={cfg['tp']} pp={cfg['pp']}").remote(
                cfg, engine_factory, repeats, warmup, idle_seconds, allow_cpu)
            inflight[ref] = cfg
        total, finished = len(inflight), 0
        while inflight:
            if progress:
                progress(finished, total, next(iter(inflight.values())))
            (ref,), _ = ray.wait(list(inflight), num_returns=1)
            cfg = inflight.pop(ref)
            finished += 1
            retried = _key(cfg) in failed_before
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                result = {"failed": _lost_reason(ray, exc, retries)}
            if "error" in result:
                raise EnergyLensError(result["error"])
            if "failed" in result:
                record_failed(output, cfg, result["failed"], retried)
                counts["failed"] += 1
            else:
                record_measured(output, result["row"], retried)
                counts["measured"] += 1
    finally:
        for ref in inflight:  # interrupted or stopped by an error: nothing keeps running for a result no one records
            ray.cancel(ref, force=True)
    if progress:
        progress(total, total, None)
    return counts

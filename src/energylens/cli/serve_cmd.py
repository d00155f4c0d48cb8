"""`energylens serve`: the web explorer on localhost (needs `pip install "energylens[web]"`)."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Optional

import typer

from ..errors import EnergyLensError

WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only; 0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    model_file: Optional[Path] = typer.Option(None, "--model-file", help="Model file that prices recommendations (default: the shipped coefficients)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Evaluation report to show at /report: the folder `energylens evaluate --out` wrote, or its report.html."),
    max_upload_mb: float = typer.Option(8.0, "--max-upload-mb", min=0.001, max=1024, help="Largest request body accepted (uploads of config.json or profiling CSV)."),
    allowed_host: Optional[list[str]] = typer.Option(None, "--allowed-host", metavar="NAME", help="A name clients reach the server by (the Host header), besides localhost and --host; repeat for several, '*' for any. Other names get 400 (defeats DNS rebinding)."),
    request_timeout: float = typer.Option(60.0, "--request-timeout", min=1, max=3600, help="Seconds a request may compute before it gets 503 (its body must arrive within 10 s)."),
    max_heavy: int = typer.Option(2, "--max-heavy", min=1, max=64, help="Recommend and fit requests computed at once; more get 429 (each may hold about 2 GB at the candidate cap)."),
):
    """Start the web explorer: pick a model, GPUs and workload, see ranked deployments, the Pareto front and
    each term's share; switch between energy, cost and carbon; fit or recalibrate on an uploaded CSV. Scripts POST
    JSON to /api/recommend, /api/predict and /api/explain, fields named as recommend's options without dashes
    (gpu, max_gpus, gpu_hour_usd; the page's "JSON API" section lists them)."""
    try:
        import uvicorn

        from ..web.app import create_app
    except ImportError as exc:
        raise EnergyLensError(f"energylens serve needs the web extra ({exc.name} is missing): "
                              "pip install \"energylens[web]\"") from None
    _check_port(host, port)  # before anything is made: a bad address leaves nothing behind
    app = create_app(model_file=model_file, report=report, max_upload_bytes=int(max_upload_mb * 1e6),
                     allowed_hosts=allowed_hosts(host, allowed_host or []), request_timeout_s=request_timeout,
                     max_heavy=max_heavy)
    typer.echo(f"EnergyLens explorer on http://{host if ':' not in host else f'[{host}]'}:{port}/ (Ctrl-C stops it)")
    from ..web.protocol import HeaderTimeoutProtocol

    # limit_concurrency: connections and tasks at once (503 beyond); timeout_keep_alive: idle connections close;
    # HeaderTimeoutProtocol: a request head not sent within 10 s closes its connection
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=256, timeout_keep_alive=5,
                http=HeaderTimeoutProtocol)


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """The Host names the server answers to: the loopback names, the address it listens on, and `extra`; on a
    wildcard address also this machine's name (other names reach it only if given)."""
    from ..web.app import LOCAL_HOSTS

    names = [*LOCAL_HOSTS, *extra]
    if host in WILDCARD_HOSTS:
        names += [socket.gethostname(), socket.getfqdn()]
    else:
        names.append(host)
    return list(dict.fromkeys(n for n in names if n))


def _check_port(host: str, port: int) -> None:
    """Fail in one line when the address cannot be bound (port taken, not an address of this machine):
    uvicorn would log a multi-line error and exit 1."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EnergyLensError(f"--host {host[:80]!r}: not an address ({exc})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            raise EnergyLensError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None

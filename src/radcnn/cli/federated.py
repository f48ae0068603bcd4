"""`radcnn federated ...`: federated learning on Flower — simulate, or deploy with a TLS SuperLink and SuperNodes.

Thin layers over `radcnn.federated`: each command builds a `FederatedConfig` (or a command line) and calls one
library function; the deployment commands check ports and certificates first, then run Flower's own executables
and stop them (children included) when they end or on Ctrl-C.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import typer
from rich.markup import escape

from radcnn.cli.render import ProgressCallback, console

federated_app = typer.Typer(help="Federated learning on Flower (simulation and the real deployment engine).",
                            no_args_is_help=True)  # fmt: skip

SET_HELP = "Any other setting as KEY=VALUE (docs/federated.md lists them), repeatable, e.g. --set alpha=0.3."


def _settings(values: dict, sets: list[str] | None) -> dict:
    """Options the user gave plus --set KEY=VALUE pairs, as Flower run-config keys."""
    from radcnn.errors import ConfigError

    out = {k.replace("_", "-"): v for k, v in values.items() if v is not None}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set proximal-mu=0.1")
        out[key.strip()] = value.strip()
    return out


def _federated_config(values: dict, sets: list[str] | None):
    from radcnn.federated.config import FederatedConfig

    return FederatedConfig.from_mapping(_settings(values, sets), where="command line")


def _print_run(result) -> None:
    auc = "n/a" if result.best_val_auc is None else f"{result.best_val_auc:.4f}"
    console.print(
        f"federated run written to {escape(str(result.run_dir))}: {result.rounds} rounds, best global model from "
        f"round {result.best_round} (val AUC {auc})",
        highlight=False,
        soft_wrap=True,
    )


@federated_app.command()
def simulate(
    config: Path = typer.Option(..., "--config", "-c", help="radcnn config (data, model, train) of every client."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
    strategy: str = typer.Option(None, help="fedavg | fedprox | fedadam (default fedavg)."),
    rounds: int = typer.Option(None, help="Server rounds (default 3)."),
    local_epochs: int = typer.Option(None, help="Local epochs per round (default 1)."),
    partition: str = typer.Option(None, help="site | dirichlet | quantity | iid (default site)."),
    clients: int = typer.Option(0, help="Number of clients (default: one per site)."),
    data: str = typer.Option(None, "--data", help="Override data.source of the config."),
    sets: list[str] = typer.Option(None, "--set", help=SET_HELP),
    baselines: bool = typer.Option(False, "--baselines", help="Also train centralised and site-alone baselines."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last round."),
) -> None:
    """Run a federated training on Flower's simulation engine, one virtual SuperNode per client.

    Example: radcnn federated simulate --config fed.yaml --out runs/fed --rounds 5 --baselines
    """
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no network calls from a radcnn command
    from radcnn.cli.app import quiet_lightning
    from radcnn.federated.simulate import simulate as run_simulation

    quiet_lightning()

    values = {"config": str(config), "run_dir": str(out), "strategy": strategy, "num_server_rounds": rounds,
              "local_epochs": local_epochs, "partition": partition, "data_source": data,
              "overwrite": overwrite or None, "resume": resume or None}  # fmt: skip
    fed = _federated_config(values, sets)
    if resume:
        fed = fed.with_changes(config="")  # a resumed run keeps the config it recorded
    result = run_simulation(fed, num_clients=clients)
    _print_run(result)
    if baselines:
        _baselines(out)


def _baselines(run_dir: Path) -> None:
    from radcnn.cli.app import quiet_lightning
    from radcnn.federated.baselines import train_baselines

    quiet_lightning()

    with ProgressCallback("baselines") as progress:
        results = train_baselines(run_dir, progress=progress)
    sites = ", ".join(f"{s['name']} {s.get('val_auc', float('nan')):.4f}" for s in results["sites"])
    console.print(
        f"val AUC — federated {results['federated']['val_auc']:.4f}, centralised "
        f"{results['centralised']['val_auc']:.4f}, each site alone: {sites}",
        highlight=False,
        soft_wrap=True,
    )


@federated_app.command("baselines")
def baselines_command(run: Path = typer.Argument(..., help="A finished federated run directory.")) -> None:
    """Train the centralised and site-alone baselines of a federated run (same data, same epochs) for the report.

    Example: radcnn federated baselines runs/fed
    """
    _baselines(run)


@federated_app.command()
def certs(
    out: Path = typer.Argument(..., help="Folder for ca.crt, server.pem and server.key."),
    host: list[str] = typer.Option(None, "--host", help="Address or name the SuperLink answers on (repeatable)."),
) -> None:
    """Make a CA and a SuperLink certificate signed by it (for a trial; hospitals use their own PKI).

    Example: radcnn federated certs certs/
    """
    from radcnn.federated.deploy import generate_certificates

    made = generate_certificates(out, hosts=tuple(host or ("127.0.0.1", "localhost")))
    console.print(f"CA: {escape(str(made.ca))}; SuperLink certificate: {escape(str(made.server_cert))}, key: "
                  f"{escape(str(made.server_key))}", highlight=False, soft_wrap=True)  # fmt: skip


def _run_foreground(name: str, command: list[str], env: dict) -> None:
    """Run a Flower process until it ends, Ctrl-C or SIGTERM; then stop it and its helper processes by PID."""
    import signal

    from radcnn.federated import processes

    def terminate(signum, frame):
        raise KeyboardInterrupt  # unwinds through `finally`, which stops the Flower processes

    previous = signal.signal(signal.SIGTERM, terminate)
    log_dir = Path(tempfile.mkdtemp(prefix=f"radcnn-{name}-"))
    started = processes.start(name, command, log_dir / f"{name}.log", env)
    console.print(f"{name} running (pid {started.pid}); log: {escape(str(started.log_file))}", highlight=False)
    try:
        while started.process.poll() is None:
            started.remember_children()
            try:
                started.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                continue
    finally:
        processes.stop([started])
        signal.signal(signal.SIGTERM, previous)
    if started.process.returncode not in (0, -signal.SIGTERM):
        from radcnn.errors import FederatedError

        raise FederatedError(f"{name} exited with code {started.process.returncode}:\n{started.log_tail()}")


@federated_app.command()
def superlink(
    certs_dir: Path = typer.Option(..., "--certs", help="Folder made by `radcnn federated certs`."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(9093, help="Port of the SuperLink's Fleet, Control and ServerAppIo APIs."),
) -> None:
    """Start a Flower SuperLink with TLS (after checking the certificates and the port).

    Example: radcnn federated superlink --certs certs/ --port 9093
    """
    from radcnn.federated.deploy import Certificates, check_port_free, superlink_command, verify_certificate
    from radcnn.federated.processes import flower_environment

    made = Certificates(certs_dir / "ca.crt", certs_dir / "server.pem", certs_dir / "server.key")
    verify_certificate(made.ca, made.server_cert, host=host)
    check_port_free(host, port)
    _run_foreground("superlink", superlink_command(made, host=host, port=port), flower_environment())


@federated_app.command()
def join(
    superlink_address: str = typer.Option(..., "--superlink", help="host:port of the SuperLink."),
    ca: Path = typer.Option(..., "--ca", help="CA certificate that signed the SuperLink's certificate."),
    partition_id: int = typer.Option(None, help="This client's partition of the shared data source."),
    num_partitions: int = typer.Option(0, help="How many partitions (clients) there are."),
    data: str = typer.Option("", "--data", help="Or: this site's own data (labels CSV / dataset folder)."),
    port: int = typer.Option(9094, help="Local port of this SuperNode's own API."),
) -> None:
    """Join a federation as a SuperNode (after verifying the SuperLink's certificate).

    Example: radcnn federated join --superlink 127.0.0.1:9093 --ca certs/ca.crt --partition-id 0 --num-partitions 3
    """
    from radcnn.federated.deploy import check_port_free, probe_superlink, supernode_command
    from radcnn.federated.processes import flower_environment

    probe_superlink(superlink_address, ca)
    check_port_free("127.0.0.1", port)
    command = supernode_command(ca, superlink_address, partition_id=partition_id, num_partitions=num_partitions,
                                data_source=data, port=port)  # fmt: skip
    _run_foreground("supernode", command, flower_environment())


@federated_app.command()
def submit(
    config: Path = typer.Option(..., "--config", "-c", help="radcnn config (data, model, train)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory the ServerApp creates."),
    superlink_address: str = typer.Option(..., "--superlink", help="host:port of the SuperLink."),
    ca: Path = typer.Option(..., "--ca", help="CA certificate that signed the SuperLink's certificate."),
    rounds: int = typer.Option(None, help="Server rounds (default 3)."),
    strategy: str = typer.Option(None, help="fedavg | fedprox | fedadam."),
    sets: list[str] = typer.Option(None, "--set", help=SET_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run."),
) -> None:
    """Submit radcnn's Flower app to a running SuperLink with `flwr run` and wait for the run to finish.

    Example: radcnn federated submit --config fed.yaml --out runs/fed --superlink 127.0.0.1:9093 --ca certs/ca.crt
    """
    from radcnn.federated.deploy import flwr_run_command, probe_superlink, write_app_folder, write_connection
    from radcnn.federated.processes import flower_environment
    from radcnn.federated.simulate import summarise

    values = {"config": str(config.resolve()), "run_dir": str(out.resolve()), "num_server_rounds": rounds,
              "strategy": strategy, "overwrite": overwrite or None}  # fmt: skip
    settings = _federated_config(values, sets).to_record()  # checked here, before anything is submitted
    probe_superlink(superlink_address, ca)
    with tempfile.TemporaryDirectory(prefix="radcnn-flwr-") as work:
        app_folder = Path(work) / "app"
        write_app_folder(app_folder, settings)
        write_connection(Path(work) / "home", superlink_address, ca)
        done = subprocess.run(flwr_run_command(app_folder), env=flower_environment(Path(work) / "home"), check=False)
    if done.returncode != 0:
        from radcnn.errors import FederatedError

        raise FederatedError(f"flwr run exited with code {done.returncode} (its output is above)")
    _print_run(summarise(out))


def register(app: typer.Typer) -> None:
    app.add_typer(federated_app, name="federated")

"""`roost notebook` (JupyterLab with the roost kernel) and `roost notebook run|diff` (papermill runs, diffs)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

notebook_app = typer.Typer(
    help="Notebooks: alone, start JupyterLab with the roost kernel; `run` executes one as a recorded run "
    "(papermill), `diff` compares two cell by cell."
)


def register(app: typer.Typer) -> None:
    """Add the `notebook` group."""
    notebook_app.callback(invoke_without_command=True)(notebook)
    notebook_app.command("run")(run_cmd)
    notebook_app.command("diff")(diff_cmd)
    app.add_typer(notebook_app, name="notebook")


def notebook(
    ctx: typer.Context,
    port: int | None = typer.Option(None, "--port", help="port to listen on (default 8888, or a free one)"),
    directory: Path | None = typer.Option(None, "--dir", help="folder JupyterLab shows (default: the cwd)"),
) -> None:
    """Start JupyterLab on 127.0.0.1 with a token and the roost kernel; prints the URL once it answers."""
    if ctx.invoked_subcommand is not None:
        return
    import logging
    import signal

    from roost.cli.output import echo
    from roost.notebook.server import launch

    logging.getLogger("roost.notebook.server").setLevel(logging.ERROR)  # the port move is printed below instead
    srv = launch(port=port, directory=directory)
    if port is not None and srv.port != port:
        echo(f"[yellow]port {port} is in use; listening on {srv.port} instead[/]")
    echo(f"JupyterLab for {srv.directory} ready in {srv.ready_s:.1f} s (kernel 'roost', Ctrl-C stops it)")
    echo(srv.url)
    sys.stdout.flush()  # the URL must reach a pipe (a test, `| tee`) while the server runs

    def _term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C, SIGTERM and SIGHUP all stop the server

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _term)
    try:
        code = srv.process.wait()
    except KeyboardInterrupt:
        return
    finally:
        srv.stop()
    if code:
        echo(f"[red]JupyterLab exited with code {code}[/]; log: {srv.log_path}")
        raise typer.Exit(1)


def run_cmd(
    notebook: Path = typer.Argument(..., help="the notebook to execute (.ipynb)"),
    param: list[str] | None = typer.Option(
        None, "-p", "--param", help="key=value (JSON values: 3, 0.1, true, [1,2]; anything else is a string)"
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="also write the executed notebook here"),
    experiment: str = typer.Option("notebooks", "--experiment", "-e", help="experiment of the run"),
    timeout: float | None = typer.Option(None, "--timeout", help="seconds a cell may run (default: no limit)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Execute a notebook with papermill as a run: params, executed notebook artifact, metrics it logs."""
    from roost.cli.output import echo, print_json
    from roost.notebook.lab import skip_iri_checker
    from roost.notebook.runner import parse_params, run_notebook

    skip_iri_checker()  # this CLI process only: faster imports of nbformat/papermill (bench/RESULTS.md)
    res = run_notebook(notebook, parse_params(param or []), out, experiment=experiment, timeout=timeout)
    if as_json:
        print_json(res)
        return
    echo(f"[green]FINISHED[/] run {res['run_id']}  executed notebook: {res['output']}")


def diff_cmd(
    a: Path = typer.Argument(..., help="notebook A (.ipynb)"),
    b: Path = typer.Argument(..., help="notebook B (.ipynb)"),
    html: Path | None = typer.Option(None, "--html", help="write a standalone side-by-side HTML page here"),
    log_to: str | None = typer.Option(None, "--log-to", help="log the HTML page as an artifact of this run"),
    as_json: bool = typer.Option(False, "--json", help="print the changed cells as JSON"),
) -> None:
    """Cell-level diff of sources and outputs (text, images); execution counts and metadata ignored."""
    import tempfile

    from roost.cli.output import echo, print_json
    from roost.errors import RoostError
    from roost.notebook.diff import diff

    run = None
    if log_to:
        from roost.registry.api import get_run

        run = get_run(log_to)  # before anything is written; the run stays as it is: only a file is added
    if html is not None and html.exists() and not html.is_file():
        raise RoostError(f"--html {html} is a folder, not a file", hint=f"name a file: --html {html / 'diff.html'}")
    d = diff(a, b)
    page: Path | None = None
    if html is not None or log_to:
        page = html or Path(tempfile.mkdtemp(prefix="roost-nbdiff-")) / f"{a.stem}-vs-{b.stem}.html"
        try:
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(d.to_html(), encoding="utf-8")
        except OSError as exc:
            raise RoostError(
                f"cannot write --html {page}: {exc.strerror or exc}",
                hint="a part of that path is a file, or it is not writable; choose another path",
            ) from None
    if run is not None and page is not None:
        from roost import artifacts

        artifacts.put(page, artifacts.safe_join(run["artifact_uri"], f"diffs/{page.name}"))
    if as_json:
        print_json({**d.to_dict(), "html": str(page) if page else None})
        return
    from rich.console import Console

    Console(highlight=False, soft_wrap=True).print(d)
    if html is not None:
        echo(f"side-by-side HTML: {html}")
    if log_to and page is not None:
        echo(f"logged to run {log_to} as diffs/{page.name}")

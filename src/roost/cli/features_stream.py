"""`roost features stream`: consume a Redis stream or Kafka topic into a feature view until SIGTERM."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `stream` to the `features` group."""
    app.command("stream")(stream_cmd)


def stream_cmd(
    view: str = typer.Argument(..., help="the feature view the events update"),
    source: str = typer.Option(
        ..., "--source", help="redis://HOST:PORT[/DB]/STREAM or kafka://HOST:PORT/TOPIC[?PROPERTY=VALUE&...]"
    ),
    group: str | None = typer.Option(None, "--group", help="consumer group (default: roost-VIEW)"),
    consumer: str | None = typer.Option(None, "--consumer", help="consumer name (default: HOSTNAME-VIEW)"),
    batch: int = typer.Option(1000, "--batch", help="most events read and written per batch (bounds memory)"),
    block_ms: int = typer.Option(1000, "--block-ms", help="how long one read waits for new events"),
    metrics_port: int | None = typer.Option(None, "--metrics-port", help="serve GET /metrics on this port"),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="address /metrics binds"),
) -> None:
    """Write stream events into a view's online store and offline log, exactly once in effect; stop with SIGTERM."""
    import logging

    from roost.cli.output import echo
    from roost.features.streaming.consumer import stream

    logging.basicConfig(level=logging.INFO, format="%(asctime)s roost-stream %(levelname)s: %(message)s")

    def started(port: int | None) -> None:
        where = f"; metrics on http://{metrics_host}:{port}/metrics" if port is not None else ""
        echo(f"consuming {source} into {view}{where} (SIGTERM stops after the batch in flight)")

    stats = stream(
        view,
        source,
        group=group,
        consumer=consumer,
        batch=batch,
        block_ms=block_ms,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        on_start=started,
    )
    echo(f"stopped: {stats.pushed} events written, {stats.dead} dead letters, {stats.batches} batches")

"""`flask customers import` and `flask customers export`: customers in and out of the store.

The commands form the `customers` group, which the app factory adds to `flask` beside
`flask init-db`; they work on the store the environment configures, as the service
would, and open it themselves: a command that only reads refuses a store that is not
there instead of creating an empty one. Everything but exported data goes to stderr:
rejected rows as `line N: field: reason`, progress, the summary. Every failure is one
line saying what happened and what to do, never a traceback. Exit status: 0 all rows
imported, 1 some rejected, 2 a usage error, a setting the command cannot run with, or a
file that cannot be read or written, 3 the store failed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from customers.config import ConfigError
from customers.csv_rows import SEPARATORS
from customers.file_rows import CountingReader, ReadFailed, ReadOptions
from customers.formats import FORMATS, format_of, read_rows, write_rows
from customers.store_settings import check_store_answers, open_configured_store
from customers.stores.sqlite import is_in_memory
from customers.web.metrics import is_store_error
from db import CustomerStore

if TYPE_CHECKING:
    from customers.bulk import Summary

# customers.bulk (and with it pydantic and the models) is imported by the command that
# runs, not when the app is built: a Lambda container or a served worker never needs it.

commands = AppGroup("customers", help="Move customers in and out of the configured store.")

# Seconds between progress lines when stderr is not a terminal (a log, a CI job).
PROGRESS_EVERY = 10.0


class CommandFailed(click.ClickException):
    """A usage problem or a file that cannot be read or written: exit status 2, like
    click's usage errors."""

    exit_code = 2


class StoreFailed(click.ClickException):
    """The store failed (no answer, no table, a full disk): exit status 3."""

    exit_code = 3


def _delimiter(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """`--delimiter`: one character, or `tab`."""
    if value is None:
        return None
    value = "\t" if value == "tab" else value
    if len(value) != 1 or value in '"\r\n':
        examples = ", ".join(SEPARATORS.values())
        raise click.BadParameter(f"give one character (such as {examples})")
    return value


class SettingRefused(click.ClickException):
    """A setting the command cannot run with: one line naming it, exit status 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"customer-api: {self.format_message()}", file=file or sys.stderr)


def command_store(*, create: bool) -> CustomerStore:
    """The configured store, opened for this command; raises SettingRefused naming the setting.

    With `create=False` (a command that only reads) a store that does not exist is
    refused, and nothing is created. An app built outside the command line (a test's)
    already holds its store, and that one is used.
    """
    store: CustomerStore | None = current_app.extensions.get("customer_store")
    if store is not None:
        return store
    try:
        store = open_configured_store(current_app.config, create=create)
        current_app.extensions["customer_store"] = store
        check_store_answers(store, current_app.config)
    except ConfigError as exc:
        raise SettingRefused(str(exc)) from None
    return store


def _refuse_memory(doing: str) -> None:
    """Refuse the in-memory store for a command whose work would not outlive it."""
    config = current_app.config
    if config["CUSTOMER_STORE"] == "sqlite" and is_in_memory(config["SQLITE_PATH"]):
        raise SettingRefused(
            f"SQLITE_PATH={config['SQLITE_PATH']!r}: the store is in memory: {doing}; set "
            "SQLITE_PATH to a database file (or CUSTOMER_STORE=dynamodb)"
        )


def _format(file: str, given: str | None) -> str:
    fmt = given or format_of(file)
    if fmt is None:
        where = "stdin or stdout" if file == "-" else f"{file!r}"
        raise click.UsageError(
            f"cannot tell the format of {where}: use --format ({', '.join(FORMATS)})"
        )
    return fmt


class Progress:
    """Rows and rows/s as a command goes: a bar on a terminal, else a line now and then."""

    def __init__(self, verb: str, *, total_bytes: int | None, stream: TextIO) -> None:
        self._verb = verb
        self._stream = stream
        self._started = self._last_line = time.monotonic()
        self._bytes = 0
        self._bar: Any = None
        if stream.isatty():
            self._bar = click.progressbar(
                # Without a size (stdin, export) an iterable of unknown length: the bar
                # then pulses instead of filling.
                iterable=_unsized() if total_bytes is None else None,
                length=total_bytes,
                label=verb,
                file=stream,
                item_show_func=lambda text: text,
                show_eta=total_bytes is not None,
            )
            self._bar.__enter__()

    def _rate(self, rows: int) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return f"{rows:,} rows, {rows / elapsed:,.0f} rows/s"

    def update(self, rows: int, bytes_done: int | None = None) -> None:
        """Show `rows` done so far; `bytes_done` moves the bar when the size is known."""
        if self._bar is not None:
            step = rows if bytes_done is None else bytes_done
            self._bar.update(step - self._bytes, self._rate(rows))
            self._bytes = step
        elif time.monotonic() - self._last_line >= PROGRESS_EVERY:
            self._last_line = time.monotonic()
            click.echo(f"{self._verb}: {self._rate(rows)}", file=self._stream)

    def echo(self, message: str) -> None:
        """A line of its own, above the bar if there is one."""
        if self._bar is not None:
            self._stream.write("\r\x1b[2K")
        click.echo(message, file=self._stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _unsized() -> Iterator[str]:
    yield from ()


@commands.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: by extension.")
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
@click.option(
    "--delimiter",
    metavar="CHAR",
    callback=_delimiter,
    help="What separates CSV cells (',', ';' or tab); default: told by the header.",
)
@click.option(
    "--ignore-unknown-columns",
    is_flag=True,
    help="Leave out CSV columns and JSON members that are not customer fields.",
)
def import_command(
    file: str, fmt: str | None, dry_run: bool, delimiter: str | None, ignore_unknown_columns: bool
) -> None:
    """Import customers from FILE (csv, jsonl, ndjson or json; - for stdin).

    Every row is checked as a POST body is; ids and timestamps, when given, are kept.
    Rejected rows are reported as `line N: field: reason` and the others imported.
    Exit status: 0 all imported, 1 some rejected, 2 usage error or unreadable file,
    3 the store failed.
    """
    fmt = _format(file, fmt)
    options = ReadOptions(delimiter, ignore_unknown_columns)
    if not dry_run:
        _refuse_memory("what is imported would vanish when this command ends")
    from customers.bulk import Summary, import_rows

    stderr = sys.stderr
    summary = Summary()
    with _opened(file) as binary:
        size = os.fstat(binary.fileno()).st_size if file != "-" else None
        source = CountingReader(binary)
        progress = Progress("importing", total_bytes=size or None, stream=stderr)
        failed = _store_failures(
            lambda reason: (
                f"{file}: the store failed: {reason}; "
                f"{_written(summary, dry_run=dry_run)}; import the file again once the store "
                "answers (rows already in are then reported as in use)"
            )
        )
        try:
            with failed:
                # A dry run only reads the store (which emails and ids are taken): it
                # creates none.
                store = command_store(create=not dry_run)
                import_rows(
                    store,
                    read_rows(source, fmt, options),
                    dry_run=dry_run,
                    report=lambda line, name, reason: progress.echo(
                        f"line {line}: {name}: {reason}"
                    ),
                    progress=lambda done: progress.update(done.read, source.bytes_read),
                    summary=summary,
                )
        except ReadFailed as exc:
            raise CommandFailed(f"{file}: {exc}; {_handled(summary, dry_run=dry_run)}") from None
        finally:
            progress.close()
    if summary.stopped is not None:
        raise CommandFailed(f"{file}: {summary.stopped}; {_handled(summary, dry_run=dry_run)}")
    click.echo(_summary(summary, dry_run=dry_run), file=stderr)
    if summary.rejected:
        raise click.exceptions.Exit(1)


def _handled(summary: Summary, *, dry_run: bool) -> str:
    """What was done before the file turned unreadable: every row read was handled."""
    if not summary.read:
        return "no row was checked" if dry_run else "nothing was imported"
    return f"before that, {_summary(summary, dry_run=dry_run)}"


def _written(summary: Summary, *, dry_run: bool) -> str:
    """What was done before the store failed: the batches it answered for."""
    if not summary.through_line:
        return "no row was checked" if dry_run else "nothing was imported"
    done = "would import" if dry_run else "imported"
    return (
        f"rows up to line {summary.through_line} were handled "
        f"({done} {summary.imported}, rejected {summary.rejected})"
    )


@contextlib.contextmanager
def _store_failures(message: Callable[[str], str]) -> Iterator[None]:
    """Run the block; a failure of the store in it becomes StoreFailed, worded by `message`
    from the store's reason. Anything else passes as it is: a setting refused (said in
    its own words), a file that cannot be read or written."""
    try:
        yield
    except click.ClickException:
        raise
    except Exception as exc:
        if not is_store_error(exc):
            raise
        raise StoreFailed(message(_reason(exc))) from None


def _reason(exc: BaseException) -> str:
    """The store's own words for a failure, on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _summary(summary: Summary, *, dry_run: bool) -> str:
    if dry_run:
        return (
            f"read {summary.read}, would import {summary.imported}, "
            f"rejected {summary.rejected} (dry run: nothing was written)"
        )
    return f"read {summary.read}, imported {summary.imported}, rejected {summary.rejected}"


@contextlib.contextmanager
def _opened(file: str) -> Iterator[IO[bytes]]:
    if file == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = _open(file)
    except OSError as exc:
        raise CommandFailed(f"{file}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def _open(file: str) -> IO[bytes]:
    return open(file, "rb")


@commands.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: by extension.")
@click.option(
    "--excel",
    is_flag=True,
    help="CSV for Excel with Finnish settings: a byte order mark, ';' between cells, "
    "and no cell read as a formula. For reading, not for importing back.",
)
def export_command(file: str, fmt: str | None, excel: bool) -> None:
    """Export every customer to FILE (csv, jsonl, ndjson or json; - for stdout), oldest first.

    A file is written whole or not at all: the export goes to a temporary file
    beside it, renamed over FILE at the end. Exit status: 0 written, 2 usage error
    or a file that cannot be written, 3 the store failed.
    """
    fmt = "csv" if excel and fmt is None and file == "-" else _format(file, fmt)
    if excel and fmt != "csv":
        raise click.UsageError(f"--excel writes CSV, not {fmt}")
    _refuse_memory("this command would make an empty one and export nothing")
    stderr = sys.stderr
    progress = Progress("exporting", total_bytes=None, stream=stderr)
    from customers.bulk import all_customers

    written = "" if file == "-" else f"; {file} was left as it was"
    failed = _store_failures(
        lambda reason: f"the store failed: {reason}{written}; export again once the store answers"
    )
    try:
        with failed:
            records = _counted(all_customers(command_store(create=False)), progress)
            if file == "-":
                out = sys.stdout.buffer
                # Log lines go to stdout; here it carries the data, so they go to stderr.
                with contextlib.redirect_stdout(sys.stderr):
                    count = write_rows(records, out, fmt, excel=excel)
                out.flush()
            else:
                count = _write_whole(Path(file), records, fmt, excel=excel)
    except OSError as exc:
        where = "stdout" if file == "-" else file
        raise CommandFailed(f"{where}: {exc.strerror or exc}; the export is incomplete") from None
    finally:
        progress.close()
    click.echo(f"exported {count} customers", file=stderr)


def _counted(records: Iterator[Any], progress: Progress) -> Iterator[Any]:
    for count, record in enumerate(records, 1):
        if count % 1000 == 0:
            progress.update(count)
        yield record


def _write_whole(path: Path, records: Iterator[Any], fmt: str, *, excel: bool) -> int:
    """Write to a temporary file beside `path`, then rename it over `path`.

    The file is made readable by its owner only (mkstemp's 0600): it holds personal data.
    """
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    except OSError as exc:
        raise CommandFailed(f"{path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as out:
            count = write_rows(records, out, fmt, excel=excel)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return count


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the store's schema, or the DynamoDB table with DYNAMODB_CREATE_TABLE=1.

    Idempotent; the service also does it at start. The in-memory store is refused:
    the schema would vanish with this command.
    """
    _refuse_memory("the schema would vanish when this command ends")
    store = command_store(create=True)
    click.echo(f"store ready: {store.kind}")

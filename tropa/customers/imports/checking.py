"""Rows of a file read and checked, in this process or, for a large CSV, in a process of its own.

Reading and checking (phones and emails above all) is about a third of an import's CPU; in a
second process it runs beside the writing instead of taking turns with it for the one
interpreter lock. The checker sends rows back in pickled chunks through a pipe, whose buffer
holds it back when the writing lags, so a file larger than memory streams. XLSX files are
read in this process (they are never that large).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import BinaryIO

from tropa.customers.imports.rows import Column, Problem, Row, parse_row
from tropa.customers.tabular import Mapping, Table, open_table

PARALLEL_ROWS = 20_000  # below this, starting a process costs more than it saves
CHUNK = 2000
Checked = Row | list[Problem]


def checked(table: Table, path: Path, mapping: Mapping, columns: list[Column], *,
            parallel: bool | None = None) -> Generator[Checked, None, None]:
    """Each data row of the table, checked: a Row, or the row's problems."""
    if parallel is None:
        parallel = table.total >= PARALLEL_ROWS
    if not parallel or path.suffix.lower() != ".csv":
        for number, cells in table.rows:
            yield parse_row(number, cells, columns, table.formulas.get(number, set()))
        return
    yield from _in_process(path, mapping, columns)


def _in_process(path: Path, mapping: Mapping, columns: list[Column]) -> Iterator[Checked]:
    # A plain child interpreter, not multiprocessing: that would import the parent's main
    # module again (the CLI, a server) and fork would copy its connections and threads.
    with subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE) as checker:
        assert checker.stdin is not None and checker.stdout is not None
        try:
            checker.stdin.write(pickle.dumps((path, mapping, columns)))
            checker.stdin.close()
            while True:
                try:
                    chunk = pickle.load(checker.stdout)
                except EOFError:
                    raise RuntimeError(f"the row checker stopped (exit code {checker.wait()}"
                                       "); run the import again") from None
                if chunk is None:
                    return
                if isinstance(chunk, BaseException):
                    raise chunk
                yield from chunk
        finally:
            if checker.poll() is None:
                checker.kill()


def _check_file(path: Path, mapping: Mapping, columns: list[Column], out: BinaryIO) -> None:
    """Every row of the file, checked, in pickled chunks, then None (or the error)."""
    try:
        table = open_table(path, mapping)
        chunk: list[Checked] = []
        for number, cells in table.rows:
            chunk.append(parse_row(number, cells, columns, set()))
            if len(chunk) >= CHUNK:
                pickle.dump(chunk, out, pickle.HIGHEST_PROTOCOL)
                chunk = []
        pickle.dump(chunk, out, pickle.HIGHEST_PROTOCOL)
        pickle.dump(None, out)
    except (OSError, ValueError) as exc:
        pickle.dump(exc, out)
    out.flush()


if __name__ == "__main__":
    # The parent's pipe is the only reader of stdout; anything printed goes to stderr.
    results = sys.stdout.buffer
    sys.stdout = sys.stderr
    source, mapping, columns = pickle.load(sys.stdin.buffer)
    _check_file(source, mapping, columns, results)

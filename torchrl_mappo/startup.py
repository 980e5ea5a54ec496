"""One command, one process: Python's cyclic garbage collector at start-up and exit.

Importing torch, tensordict (which imports ``torch._dynamo``) and TorchRL
leaves about a million long-lived objects. Python's collector walks all of
them on each full collection: several times while they are imported, every
so often while training allocates, and once more when the interpreter exits.
None of those walks finds garbage among them. In a process that runs one
command and exits (the ``torchrl-mappo`` console script, ``python -m
torchrl_mappo``, ``benchmarks/ours_runner.py``) the collector is therefore
off while the dependencies are imported; the heap they leave is then frozen
(``gc.freeze``: moved out of the collector's reach, never freed) and the
collector is back on for everything the command itself allocates
(:func:`imports_done`, called by a run once its trainer is imported); at exit
everything is frozen again, so the interpreter's last collection has nothing
to walk. Measured on a 2-core VM (``examples/results/speed/README.md``,
session 9): a process that imports the trainer and exits, 2.2 s instead of
3.9 s; a run's time outside its training loop 2.6 s instead of 4.1 s; balance's
loop 11% faster for the same frames (navigation's within noise).

:func:`main <torchrl_mappo.cli.main>` called from Python (tests, notebooks,
a user's script) does none of this: a library does not switch off its
caller's collector or freeze its caller's objects.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

_importing = False  # inside one_command(), before imports_done()


@contextmanager
def one_command() -> Iterator[None]:
    """The collector off until :func:`imports_done`; everything frozen on the way out."""
    global _importing
    was_enabled = gc.isenabled()
    gc.disable()
    _importing = True
    try:
        yield
    finally:
        _importing = False
        gc.freeze()  # the process ends: its last full collection has nothing left to walk
        if was_enabled:
            gc.enable()


def imports_done() -> None:
    """The dependencies are imported: freeze what start-up built and turn the collector back on.

    Called where a command has imported what it needs (a run: once its config is checked and the
    trainer imported); does nothing outside :func:`one_command` or when called again.
    """
    global _importing
    if not _importing:
        return
    _importing = False
    gc.freeze()
    gc.enable()

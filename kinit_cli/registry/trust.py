"""Whose code a command may run: the one place that decides it.

A run directory, a `.keras` file or a checkpoint may come from someone else, so reading one
is reading data. The plugins a file names (a run's config.yaml, an init_from source's) are
imported only when the user names that code (`--plugin`, or the `plugins:` of the config the
user runs) or passes `--trust-plugins`, which kinit then says on stderr; a `.keras` file's
own Python code (a Lambda layer) loads only with `--unsafe-deserialization`. The CLI makes
one Trust from its flags and every reader of runs, models and init_from sources takes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from kinit_cli.errors import UntrustedCode
from kinit_cli.registry.plugins import (
    LoadedPlugin,
    absolute,
    is_file,
    is_imported,
    load_plugins,
)

FLAG = "--trust-plugins"


@dataclass(frozen=True)
class Trust:
    """What code the user allowed, from the command's flags. `imported` records what
    `trusted` let run, as the warnings the command prints."""

    plugins: tuple[str, ...] = ()  # --plugin: the user's, relative to the current folder
    trusted: bool = False  # --trust-plugins: import the plugins the files read name
    unsafe: bool = False  # --unsafe-deserialization: a .keras file's code (safe_mode=False)
    imported: list[str] = field(default_factory=list, compare=False)

    def safe(self) -> Trust:
        """The same leave without a .keras file's code: what init_from reads with."""
        return replace(self, unsafe=False)

    def load_user(self) -> list[LoadedPlugin]:
        """The built-in pack, the installed entry points and the user's --plugin."""
        loaded = load_plugins([], base_dir=None)
        return loaded + load_plugins(list(self.plugins), base_dir=Path.cwd(), entry_points=False)

    def load_named(
        self, specs: Sequence[str], base_dir: Path, named_by: str, *, running: bool = False
    ) -> list[str]:
        """Import the plugins a file names (`named_by`, relative ones against `base_dir`)
        as far as the user allowed; returns those left out (files by their absolute path).
        One imported already (the same file through --plugin) runs nothing again, so it is
        always allowed; one whose module name a --plugin took is that copy, the user's, so
        the file's own never runs. `running`: the file is a run's config that `kinit train`
        runs (RUN/config.yaml, --resume), so its plugins run, with a warning."""
        specs = not_replaced(specs, self.plugins)
        allowed = [s for s in specs if self.trusted or running or is_imported(s, base_dir)]
        fresh = [absolute(s, base_dir) for s in allowed if not is_imported(s, base_dir)]
        if fresh:  # noted first: a plugin that fails has run all the same
            self.imported.append(_warning(named_by, fresh, running and not self.trusted))
        load_plugins(allowed, base_dir=base_dir, entry_points=False)
        return [absolute(s, base_dir) for s in specs if s not in allowed]

    def notes(self) -> list[str]:
        """The warning owed for each file whose plugins --trust-plugins let run."""
        return list(self.imported)

    def refusal(
        self, what: str, withheld: Sequence[str], classes: Sequence[str], needs: str = ""
    ) -> UntrustedCode:
        """The error for `what` (a run, a checkpoint, a config) that cannot be rebuilt
        without the plugins it names: which classes, which files, and how to allow them
        (`needs`: what else is missing without them)."""
        needs = needs or (
            f"its model uses {', '.join(classes)}, which kinit cannot rebuild without them"
            if classes
            else "its model cannot be rebuilt without them"
        )
        message = (
            f"{what} names plugins that kinit does not import unless asked, since they are "
            f"code: {', '.join(withheld)}; {needs}. Add {FLAG} to import them (only for files "
            "you trust), or --plugin FILE to load a copy of your own"
        )
        return UntrustedCode(message, list(withheld), list(classes))


def _warning(named_by: str, files: Sequence[str], run_config: bool) -> str:
    """What stderr says of plugins imported from a file the user did not write."""
    if run_config:
        return (
            f"{named_by} is a kinit run's config: kinit train imported the plugins it names, "
            f"and their code ran with your permissions: {', '.join(files)}. To run a copy of "
            "your own instead, give it with --plugin FILE"
        )
    return (
        f"{FLAG}: imported the plugins {named_by} names, and their code ran with your "
        f"permissions: {', '.join(files)}"
    )


def not_replaced(specs: Sequence[str], user: Sequence[str]) -> list[str]:
    """The plugins `specs` names, less those a plugin of the user's (`user`, --plugin) stands
    for: one imported under the same module name, which the user's copy has taken."""
    taken = {_module(p) for p in user}
    return [s for s in specs if _module(s) not in taken]


def _module(spec: str) -> str:
    """The module name a plugin is imported as: a file's stem, else the dotted name."""
    return Path(spec).stem if is_file(spec) else spec

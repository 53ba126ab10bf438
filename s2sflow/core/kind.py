"""The interface every task kind implements, and the registry that finds a task's kind.

A kind is one package ``s2sflow/kinds/<name>/`` with the same module names as every other kind:
``split.py``, ``tokenize.py``, ``train.py``, ``evaluate.py`` and ``export.py`` each define the stage
function of their name, ``stage(task, params, layout) -> summary dict``, where ``params`` is the task's
section for that stage (the kind validates it with its typed schema); ``predict.py`` defines
``predict(args, export_dir)`` for ``s2sflow predict``. Its ``__init__.py`` defines ``KIND``: the name,
the headline metric and, where the kind has them, its download content checks and package readers.
The download stage itself is the same for every kind (``s2sflow.core.sources``).

The registry is the folder: every sub-package of ``s2sflow.kinds`` is a kind, so adding one is a new
package and a params section (``kind: <name>``); nothing else changes, and no other task goes stale.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from s2sflow.core.errors import S2SFlowError

STAGE_FUNCTIONS = ("split", "tokenize", "train", "evaluate", "export")
KINDS_PACKAGE = "s2sflow.kinds"


@dataclass(frozen=True)
class Kind:
    """``headline(task_section) -> (metric, "max" | "min")``: the test metric reports sort by.
    ``section_keys``: keys a task's params section may have besides its stages (e.g. ``shape``).
    ``sources``: the module holding ``CONTENT_CHECKS`` / ``PACKAGE_READERS`` for download, if any."""

    name: str
    headline: Callable[[dict], tuple[str, str]]
    section_keys: tuple[str, ...] = ()
    sources: str | None = None

    @property
    def package(self) -> str:
        return f"{KINDS_PACKAGE}.{self.name}"

    def stage(self, stage: str) -> Callable[..., dict]:
        """The kind's function for ``stage`` (imported only now: a stage loads only its own code)."""
        if stage not in STAGE_FUNCTIONS:
            raise ValueError(f"unknown stage {stage}")
        return getattr(importlib.import_module(f"{self.package}.{stage}"), stage)

    def predictor(self) -> Callable:
        return importlib.import_module(f"{self.package}.predict").predict

    def download_hooks(self) -> tuple[dict, dict]:
        """(content checks, package readers) by the names params use (``download.check``, a package
        source's ``reader``)."""
        if self.sources is None:
            return {}, {}
        module = importlib.import_module(f"{self.package}.{self.sources}")
        return getattr(module, "CONTENT_CHECKS", {}), getattr(module, "PACKAGE_READERS", {})


def available_kinds() -> list[str]:
    """Every kind: the sub-packages of ``s2sflow/kinds``."""
    from s2sflow import kinds

    return sorted(m.name for m in pkgutil.iter_modules(kinds.__path__) if m.ispkg)


def get_kind(name: str, task: str | None = None) -> Kind:
    """The kind called ``name`` (a params value: only names of existing kind packages are imported)."""
    known = available_kinds()
    if not isinstance(name, str) or name not in known:
        where = f"{task}.kind" if task else "kind"
        raise S2SFlowError(f"params.yaml: {where} '{name}' is unknown (available: {', '.join(known)})", task)
    kind = importlib.import_module(f"{KINDS_PACKAGE}.{name}").KIND
    assert kind.name == name, f"{KINDS_PACKAGE}.{name}.KIND is named {kind.name}"
    return kind

"""Enrichment: user hooks that add to a record before it loads.

A hook is `module:function`, called as `function(record, context)`; it
returns the record (changed or not) or raises to reject it, with its message
as the reason. The context is read-only: the file's event context and a
per-file cache, so an API looked up during ingestion is asked once per
distinct key. All hooks together get a time budget per file, so a slow API
cannot eat the function's deadline.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from widf_loader.events import FileRef

Hook = Callable[[Any, "EnrichmentContext"], Any]


class EnrichmentBudgetExceeded(Exception):
    """The hooks spent more than their time budget on one file."""


class RecordRejectedByHook(Exception):
    """A hook refused a record; the message says why."""


@dataclass(frozen=True)
class EnrichmentContext:
    file: FileRef
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """compute() once per distinct key within this file."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def load_hooks(names: tuple[str, ...]) -> tuple[tuple[str, Hook], ...]:
    hooks = []
    for name in names:
        module_name, _, function_name = name.partition(":")
        try:
            hooks.append((name, getattr(importlib.import_module(module_name), function_name)))
        except (ImportError, AttributeError) as e:
            from widf_loader.pipeline_config import PipelineConfigError

            raise PipelineConfigError(f"enrichment hook '{name}' cannot be loaded: {e}") from None
    return tuple(hooks)


class Enricher:
    """Runs the hooks over one file's records, within the file's time budget."""

    def __init__(self, hooks: tuple[tuple[str, Hook], ...], ref: FileRef, budget_seconds: float):
        self.hooks, self.budget = hooks, budget_seconds
        self.context = EnrichmentContext(file=ref)
        self.spent = 0.0

    def __call__(self, record: Any) -> Any:
        for name, hook in self.hooks:
            started = time.perf_counter()
            try:
                record = hook(record, self.context)
            except Exception as e:  # noqa: BLE001 - a hook's failure rejects the record, with the hook's message
                raise RecordRejectedByHook(f"enrichment hook '{name}': {e}") from None
            finally:
                self.spent += time.perf_counter() - started
            if self.spent > self.budget:
                raise EnrichmentBudgetExceeded(
                    f"{self.context.file.uri}: enrichment hooks took over {self.budget:g}s "
                    "(enrichment.time_budget_seconds); make the hook faster or cache its lookups with context.cached()"
                )
        return record

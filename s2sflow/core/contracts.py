"""Run Great Expectations suites on pandas frames in an ephemeral context and keep a plain report."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from s2sflow.core.errors import S2SFlowError


@dataclass
class ContractReport:
    task: str
    success: bool
    results: dict[str, list[dict]]
    summary: dict = field(default_factory=dict)

    def failures(self) -> list[str]:
        return [f"{split}: {r['expectation']}({r['kwargs']}) observed {r['observed']}"
                for split, rows in self.results.items() for r in rows if not r["success"]]

    def to_dict(self) -> dict:
        return {"task": self.task, "success": self.success, "summary": self.summary, "results": self.results}

    def raise_if_failed(self) -> None:
        if not self.success:
            failed = self.failures()
            raise S2SFlowError(f"data contract failed ({len(failed)} expectation(s)): {failed[0]}"
                               + (f"; and {len(failed) - 1} more" if len(failed) > 1 else ""), self.task)


def _observed(result: dict) -> object:
    res = result.get("result") or {}
    for key in ("observed_value", "unexpected_count"):
        if key in res:
            value = res[key]
            return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
    return None


def validate_frame(task: str, suites: dict[str, tuple[pd.DataFrame, list]]) -> ContractReport:
    """Validate each named frame against its expectations; one suite per split."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(f"{task}_splits")
    results, success = {}, True
    for split, (frame, expectations) in suites.items():
        batch_def = source.add_dataframe_asset(name=split).add_batch_definition_whole_dataframe(f"{split}_batch")
        suite = gx.ExpectationSuite(name=f"{task}_{split}", expectations=expectations)
        outcome = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
        rows = []
        for r in outcome.results:
            d = r.to_json_dict()
            cfg = d["expectation_config"]
            kwargs = {k: v for k, v in cfg["kwargs"].items() if k not in ("batch_id",)}
            if isinstance(kwargs.get("value_set"), list) and len(kwargs["value_set"]) > 20:
                kwargs["value_set"] = f"<{len(kwargs['value_set'])} values>"
            rows.append({"expectation": cfg["type"], "kwargs": kwargs, "success": bool(d["success"]),
                         "observed": _observed(d)})
        results[split] = rows
        success = success and bool(outcome.success)
    return ContractReport(task, success, results)

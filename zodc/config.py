"""The resolved configuration of a fit: :class:`RunConfig`, read by the report and the CLI.

``Condenser`` checks its constructor parameters declaratively, fills the task's defaults and
stores the result as one fitted attribute, ``config_``: what ran, with nothing left ``None`` or
``"auto"``. Everything here is public configuration (no statistic of the data).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from zodc.start import DPMeans, NoiseStart


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What a fit ran with (``Condenser.config_``); see :class:`~zodc.Condenser` for each field."""

    task: str
    model: Any
    backend: str
    epsilon: float
    delta: float
    rows: int                      # rows per class (classification) or rows (survival)
    steps: int
    num_directions: int
    smoothing: float
    learning_rate: float | None    # None: a custom optimizer
    l2_norm_clip: float
    batch_size: int
    loss: str
    class_weight: str | None
    scheme: str
    directions: str
    average_tail: float
    select_features: int | None
    selection_share: float
    soft_labels: bool | str        # "auto" on survival: decided from the start's noise at fit time
    soft_label_start: float
    init: DPMeans | NoiseStart
    task_scale: float              # the start's default spread for this task
    preprocessing_share: float | str    # a share, or "auto" (zodc.data.dp_schema.schema_share)
    on_out_of_bounds: str
    n_jobs: int
    verbose: int
    units: str = "bounds"          # "data": the loop in each column's DP spread; "bounds": the encoded [-1, 1]
    trust_radius: float | None = None  # how far a cell may move from its start (encoded units; data units: column spreads)
    step_rule: str = "adam"        # "adam", "sgd" (noise-calibrated) or "custom" (the user's optimizer)
    num_time_bins: int = 10
    time_grid: str = "log"
    time_init: str = "center"
    subspace: int | None = None            # deprecated ablation
    soft_label_steps: int | None = None    # deprecated ablation

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the model by name, the start as ``{"kind": ..., fields}``."""
        out = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        out["model"] = getattr(self.model, "name", type(self.model).__name__)
        out["init"] = {"kind": "dp_means" if isinstance(self.init, DPMeans) else "noise",
                       **dataclasses.asdict(self.init)}
        if isinstance(self.init, DPMeans) and self.init.scale is None:
            out["init"]["scale"] = self.task_scale
        return out

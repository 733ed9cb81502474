"""Public datasets and schemas, the schema ↔ model-space transform, input checks, DP schemas, IO."""

from zodc.data.datasets import Dataset, DatasetInfo, list_datasets, load_dataset, load_schema
from zodc.data.dp_schema import estimate_class_proportions, estimate_event_rate, estimate_schema
from zodc.data.io import read_table, write_json_atomic, write_table_atomic
from zodc.data.schema import CategoricalColumn, NumericColumn, Schema
from zodc.data.transform import EncodedTable, FeatureBlock, TableEncoder
from zodc.data.validation import check_min_rows, check_raw_table, validate_table

__all__ = [
    "CategoricalColumn",
    "Dataset",
    "DatasetInfo",
    "EncodedTable",
    "FeatureBlock",
    "NumericColumn",
    "Schema",
    "TableEncoder",
    "check_min_rows",
    "check_raw_table",
    "estimate_class_proportions",
    "estimate_event_rate",
    "estimate_schema",
    "list_datasets",
    "load_dataset",
    "load_schema",
    "read_table",
    "validate_table",
    "write_json_atomic",
    "write_table_atomic",
]

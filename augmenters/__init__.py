"""antifit's augmentation library: deterministic, offline text augmentation pipelines.

Pure: importing it loads no web framework, database, torch or transformers; heavy resources
(WordNet, the tagger, models) load on first use.
"""

from augmenters.base import Applied, Augmenter, Draft, StepSpec, TextAugmenter
from augmenters.errors import AugmentError, RecordError, ResourceMissing, SpecError
from augmenters.pipeline import Pipeline, Record, Variant, augment
from augmenters.spec import PipelineSpec, example_pipelines, json_schema, parse_spec, step_schemas

__all__ = [
    "Applied",
    "AugmentError",
    "Augmenter",
    "Draft",
    "Pipeline",
    "PipelineSpec",
    "Record",
    "RecordError",
    "ResourceMissing",
    "SpecError",
    "StepSpec",
    "TextAugmenter",
    "Variant",
    "augment",
    "example_pipelines",
    "json_schema",
    "parse_spec",
    "step_schemas",
]

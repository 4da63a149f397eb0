"""Human coding in the loop: samples to code by hand, and trends whose intervals stay valid.

`design` draws samples (stratified random with inclusion probabilities, or the
least certain sentences for training), `qdpx` writes a sample as a blind
REFI-QDA project, `files` reads sample and validation files and joins human
codes back to a sample, `correction` holds the design-based (prediction-powered)
estimators in numpy, and `tables` applies them to the trend tables and
reports the machine's agreement and prevalence bias per period.
"""

from textmine.validation.design import (
    Sample,
    draw_random_sample,
    draw_uncertain_sample,
    sample_table,
    sentence_frame,
)
from textmine.validation.files import (
    ValidationError,
    attach_sample,
    check_validation,
    import_sample_coding,
    read_sample,
    read_validation,
)
from textmine.validation.tables import corrected_column_names, corrected_trends, validation_report

__all__ = [
    "Sample",
    "ValidationError",
    "attach_sample",
    "check_validation",
    "corrected_column_names",
    "corrected_trends",
    "draw_random_sample",
    "draw_uncertain_sample",
    "import_sample_coding",
    "read_sample",
    "read_validation",
    "sample_table",
    "sentence_frame",
    "validation_report",
]

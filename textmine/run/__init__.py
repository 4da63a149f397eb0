"""The one runner: settings, planning, pure stage steps, outputs and the stage loop."""

from textmine.run.outputs import register_export, write_run_json
from textmine.run.plan import SourceFile, WorkPlan, plan_work, scan_files
from textmine.run.runner import (
    BatchMapper,
    BatchResult,
    process_map,
    recorded_run,
    run_pipeline,
    run_stages,
    serial_map,
    shared_map,
)
from textmine.run.settings import STAGES, RunCounts, RunReport, RunSettings, stage_timer
from textmine.run.steps import CoderSpec, Extraction, code_documents, extract_files

__all__ = [
    "STAGES",
    "BatchMapper",
    "BatchResult",
    "CoderSpec",
    "Extraction",
    "RunCounts",
    "RunReport",
    "RunSettings",
    "SourceFile",
    "WorkPlan",
    "code_documents",
    "extract_files",
    "plan_work",
    "process_map",
    "recorded_run",
    "register_export",
    "run_pipeline",
    "run_stages",
    "scan_files",
    "serial_map",
    "shared_map",
    "stage_timer",
    "write_run_json",
]

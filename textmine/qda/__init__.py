"""REFI-QDA exchange files: write `.qdpx` projects and `.qdc` codebooks, read human codings back.

`schema` holds the vocabulary (namespaces, XSD validation, stable GUIDs, the
codebook as QDA codes), `write` builds and writes projects and codebooks,
`read` parses projects from any QDA tool and matches their codings to
textmine's sentences.
"""

from textmine.qda.read import (
    ImportedCoding,
    QdaProject,
    QdaSelection,
    QdaSource,
    parse_qdpx,
    read_qdpx,
    selection_codes_sentence,
)
from textmine.qda.schema import (
    CODEBOOK_NAMESPACE,
    KIND_GROUPS,
    PROJECT_NAMESPACE,
    CodeSpec,
    RefiQdaError,
    codebook_codes,
    codebook_schema,
    codebook_version,
    normalise_code_name,
    project_schema,
    project_xsd_path,
    schema_errors,
    validate_codebook_xml,
    validate_project_xml,
)
from textmine.qda.write import build_qdpx, codebook_xml, write_qdc, write_qdpx

__all__ = [
    "CODEBOOK_NAMESPACE",
    "KIND_GROUPS",
    "PROJECT_NAMESPACE",
    "CodeSpec",
    "ImportedCoding",
    "QdaProject",
    "QdaSelection",
    "QdaSource",
    "RefiQdaError",
    "build_qdpx",
    "codebook_codes",
    "codebook_schema",
    "codebook_version",
    "codebook_xml",
    "normalise_code_name",
    "parse_qdpx",
    "project_schema",
    "project_xsd_path",
    "read_qdpx",
    "schema_errors",
    "selection_codes_sentence",
    "validate_codebook_xml",
    "validate_project_xml",
    "write_qdc",
    "write_qdpx",
]

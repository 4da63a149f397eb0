"""`watch-publications`: fetch new documents from feeds, then mine them.

Downloads new documents from the sources file's feeds into the inbox (with
manifest rows from the feed), then mines what is new with `mine-corpus`.
"""

from __future__ import annotations

from pathlib import Path

from flows.settings import configure_prefect_env

configure_prefect_env()

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.tasks import exponential_backoff  # noqa: E402

from flows.mine_corpus import DaskParameters, TaskRunnerName, TopicParameters, mine_corpus  # noqa: E402
from textmine.feeds import check_feeds, load_sources  # noqa: E402


@task(
    name="check-feeds",
    retries=3,
    retry_delay_seconds=exponential_backoff(10),
    retry_jitter_factor=0.5,
    cache_policy=NO_CACHE,
)
def check_feeds_task(sources_path: str) -> dict:
    """Check every feed once; entries that fail are reported inside the result, not raised."""
    return check_feeds(load_sources(sources_path)).to_dict()


@flow(name="watch-publications", log_prints=True)
def watch_publications(
    sources: str = "flows/sources.yml",
    corpus_paths: list[str] = ["corpus"],  # noqa: B006  (never mutated)
    out_dir: str = "outputs",
    codebook: str = "",
    topics: TopicParameters = TopicParameters(),
    task_runner: TaskRunnerName = "thread",
    max_workers: int = 0,
    dask: DaskParameters = DaskParameters(),
    mine_when_nothing_downloaded: bool = True,
) -> dict:
    """Download new publications from the feeds, then run mine-corpus on what is new.

    Args:
        sources: Sources YAML (inbox, manifest, folders, feeds, limits).
        corpus_paths: Folders mine-corpus reads (the inbox and the sources' folders are added).
        out_dir: Output folder of mine-corpus.
        codebook: Codebook YAML; empty: the packaged codebook.
        topics: Number of topics, refit, and the period of trends; defaults suit a first run.
        task_runner: thread (default) suits most runs; process for many PDFs on several cores;
            dask for a Dask cluster (see dask).
        max_workers: Workers of the thread or process pool; 0 (default): Prefect's choice.
            Lower it to leave cores free.
        dask: Used only with task_runner dask: a scheduler address, or a local cluster's size.
        mine_when_nothing_downloaded: Still run mine-corpus (it does nothing when nothing
            changed) so files dropped into inbox folders by hand are picked up.
    """
    logger = get_run_logger()
    parsed = load_sources(sources)
    report = check_feeds_task(sources)
    downloaded, failures = report["downloaded"], report["failures"]
    logger.info(
        "%d feeds checked: %d new entries, %d documents downloaded, %d entries failed",
        report["feeds_checked"],
        report["entries_new"],
        len(downloaded),
        len(failures),
    )
    lines = [
        "# watch-publications",
        "",
        f"{report['feeds_checked']} feeds, {report['entries_new']} new entries, "
        f"{report['entries_seen_before']} seen before, {len(downloaded)} documents downloaded "
        f"into `{parsed.inbox}`.",
    ]
    if failures:
        lines += ["", "| feed | entry | url | reason | message |", "|---|---|---|---|---|"]
        lines += [
            f"| {f['feed']} | {f['entry_id']} | {f['url']} | {f['reason']} | "
            f"{str(f['message']).replace('|', '/')} |"
            for f in failures
        ]
    create_markdown_artifact("\n".join(lines), key="textmine-watch-summary")
    if downloaded:
        create_table_artifact(
            [{k: d[k] for k in ("title", "published", "feed", "url", "path")} for d in downloaded],
            key="textmine-downloads",
            description="documents downloaded from the feeds",
        )
    result = {"feeds": report, "mine": None}
    if downloaded or mine_when_nothing_downloaded:
        paths = _mining_paths(corpus_paths, [parsed.inbox, *parsed.folders])
        result["mine"] = mine_corpus(
            corpus_paths=paths,
            manifest=str(parsed.manifest) if parsed.manifest.is_file() else "",
            codebook=codebook or "",
            out_dir=out_dir,
            topics=topics,
            task_runner=task_runner,
            max_workers=max_workers,
            dask=dask,
        )
    return result


def _mining_paths(corpus_paths: list[str], extra: list[Path]) -> list[str]:
    """corpus_paths plus every extra folder not already inside one of them."""
    roots = [Path(p).resolve() for p in corpus_paths]
    paths = list(corpus_paths)
    for folder in extra:
        folder = folder.resolve()
        if folder.is_dir() and not any(folder == r or r in folder.parents for r in roots):
            paths.append(str(folder))
    return paths

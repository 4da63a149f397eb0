"""Serve the textmine deployments with their schedules.

Run as `textmine serve` or `python -m flows.serve`. Needs a Prefect server
(PREFECT_API_URL).

Deployments:
- `mine-corpus/textmine`: triggered by hand (UI or `prefect deployment run`), or on
  --mine-cron.
- `watch-publications/daily`: on --watch-cron (daily 06:00 by default).

Schedules are registered with `pause_on_shutdown=False`, so stopping this process
(or a reboot) leaves them active on the server; the next `textmine serve`
picks their runs up again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.settings import configure_prefect_env

configure_prefect_env()

from prefect import serve  # noqa: E402
from prefect.schedules import Cron  # noqa: E402

from flows.mine_corpus import mine_corpus  # noqa: E402
from flows.watch_publications import watch_publications  # noqa: E402

MINE_DEPLOYMENT = "textmine"
WATCH_DEPLOYMENT = "daily"


def build_deployments(
    sources: Path = Path("flows/sources.yml"),
    corpus: Path = Path("corpus"),
    out_dir: Path = Path("outputs"),
    watch_cron: str = "0 6 * * *",
    mine_cron: str | None = None,
    timezone: str = "Europe/London",
):
    """The two RunnerDeployments with absolute paths as default parameters."""
    corpus, out_dir, sources = corpus.resolve(), out_dir.resolve(), sources.resolve()
    mine = mine_corpus.to_deployment(
        name=MINE_DEPLOYMENT,
        schedules=[Cron(mine_cron, timezone=timezone)] if mine_cron else None,
        parameters={"corpus_paths": [str(corpus)], "out_dir": str(out_dir)},
        description="Mine the corpus incrementally (same work as `textmine run`).",
        tags=["textmine"],
    )
    watch = watch_publications.to_deployment(
        name=WATCH_DEPLOYMENT,
        schedules=[Cron(watch_cron, timezone=timezone)],
        parameters={
            "sources": str(sources),
            "corpus_paths": [str(corpus)],
            "out_dir": str(out_dir),
        },
        description="Download new publications from the feeds, then mine what is new.",
        tags=["textmine"],
    )
    return [mine, watch]


def serve_deployments(**kwargs) -> None:
    """Register the deployments and run their flows until interrupted."""
    sources = Path(kwargs.get("sources", "flows/sources.yml"))
    if not sources.is_file():
        print(
            f"warning: {sources} does not exist: watch-publications will fail until it does "
            "(copy flows/sources.example.yml)"
        )
    serve(*build_deployments(**kwargs), pause_on_shutdown=False)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line (default: sys.argv) and serve the deployments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, default=Path("flows/sources.yml"))
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--out", dest="out_dir", type=Path, default=Path("outputs"))
    parser.add_argument("--watch-cron", default="0 6 * * *")
    parser.add_argument("--mine-cron", default=None)
    parser.add_argument("--timezone", default="Europe/London")
    serve_deployments(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()

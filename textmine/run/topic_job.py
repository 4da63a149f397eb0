"""The topic stage in a second process, alongside coding, trends and outputs.

Topics need only the sentences' text and the documents' dates, not their
codes, so with more than one worker `textmine run` fits them in their own
process as soon as reading is done; the main process codes, computes trends and
writes the outputs that do not depend on topics meanwhile, and waits for the
topics only where it needs them. The second process writes no store (the main
process keeps the topic tables); it writes the topic model folder and, when
asked, the topics-over-time figure, exactly as the main process would. The
topics are those of the same fit in the main process (the fit is seeded and
single-threaded; a test compares the outputs of both ways).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from textmine.codebook import Codebook
    from textmine.run.settings import RunSettings
    from textmine.topics import TopicOutputs


@dataclass
class TopicResult:
    """What the topic stage made: its tables, the figure files it wrote, its own seconds."""

    outputs: TopicOutputs | None
    error: BaseException | None = None
    figure_paths: list[Path] = field(default_factory=list)
    figure_error: BaseException | None = None
    seconds: float = 0.0


def topic_outputs_of(
    settings: RunSettings,
    sentences: pd.DataFrame,
    documents: pd.DataFrame,
    codebook: Codebook | None,
    status: Callable[[str], None] | None = None,
) -> TopicOutputs:
    """Fit (first time, or when asked) or extend the run's topic model; its tables.

    `sentences` needs the sentence columns only (codes are not used). The
    codebook (the run's, loaded here when None) is read only for topics seeded
    with its words.
    """
    from textmine.topics import TopicSettings, run_topics

    topic_settings = TopicSettings(by=settings.by, n_topics=settings.n_topics)
    if codebook is None and topic_settings.seed_topics_from_codebook:
        from textmine.codebook import load_codebook

        codebook = load_codebook(settings.codebook) if settings.codebook else load_codebook()
    return run_topics(
        sentences,
        documents,
        topic_settings,
        settings.out_dir / "topic_model",
        refit=settings.refit_topics,
        codebook=codebook,
        status=status,
    )


def topic_figure_paths(outputs: TopicOutputs, settings: RunSettings) -> list[Path]:
    """Write the topics-over-time figure (PNG, HTML, plotly.min.js) into the run's figures folder."""
    from textmine.figures import write_figures

    return write_figures(None, outputs, settings.out_dir / "figures", by=settings.by)


def run_topic_stage(
    settings: RunSettings,
    sentences: pd.DataFrame,
    documents: pd.DataFrame,
    codebook: Codebook | None,
    *,
    with_figure: bool,
    status: Callable[[str], None] | None = None,
) -> TopicResult:
    """The topic stage (and the topic figure when `with_figure`); errors are returned, not raised."""
    started = time.perf_counter()
    try:
        outputs = topic_outputs_of(settings, sentences, documents, codebook, status)
    except Exception as exc:  # an analysis on top of the corpus: reported, the run goes on
        return TopicResult(None, error=exc, seconds=time.perf_counter() - started)
    result = TopicResult(outputs)
    if with_figure and not outputs.topics_over_time.empty:
        if status is not None:
            status("drawing the topics-over-time figure")
        try:
            result.figure_paths = topic_figure_paths(outputs, settings)
        except Exception as exc:
            result.figure_error = exc
    result.seconds = time.perf_counter() - started
    return result


def _exit_when_gone(parent_pid: int, every_seconds: float = 1.0) -> None:
    """End this process as soon as the process `parent_pid` is gone (a killed run)."""
    while True:
        time.sleep(every_seconds)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # it exists (under another user): alive
            continue


def _child_main(connection: Connection, environment: dict[str, str], parent_pid: int) -> None:
    """Entry point of the second process.

    Loads the topic libraries first (while the main process reads), then waits
    for (settings, sentences, documents, with_figure), or None to stop; sends
    status lines, then the result, through `connection`. Ends at once when the
    run's process `parent_pid` is gone, so a killed run leaves no fit running
    that could write the topic model folder under the next run.
    """
    from textmine.run.settings import use_settings_environment

    threading.Thread(target=_exit_when_gone, args=(parent_pid,), daemon=True).start()
    use_settings_environment(environment)
    with contextlib.suppress(Exception):  # reported by the stage itself, which imports again
        from textmine.topics.fit import import_model_libraries

        import_model_libraries()
        import textmine.figures  # noqa: F401  (matplotlib, plotly)
    try:
        message = connection.recv()
    except EOFError:
        return
    if message is None:
        connection.close()
        return
    settings, sentences, documents, with_figure = message
    try:
        result = run_topic_stage(
            settings,
            sentences,
            documents,
            None,
            with_figure=with_figure,
            status=lambda text: connection.send(("status", text)),
        )
        try:
            connection.send(("result", result))
        except Exception as exc:  # an exception that cannot be pickled
            connection.send(
                ("result", TopicResult(None, error=RuntimeError(repr(exc)), seconds=result.seconds))
            )
    except BaseException:
        connection.send(("result", TopicResult(None, error=RuntimeError(traceback.format_exc()))))
    finally:
        connection.close()


class TopicJob:
    """The topic stage in its own process (forkserver: no fork of threads).

    The process starts at once and loads the topic libraries; `start` hands it
    the sentences, `result` waits for the topics, `cancel` stops it.
    """

    def __init__(self, settings: RunSettings) -> None:
        from textmine.run.settings import settings_environment, worker_context

        context = worker_context()
        self.settings = settings
        self.with_figure = "figures" in settings.stages and "trends" in settings.stages
        self.n_sentences: int | None = None  # None: not started
        self._connection, child = context.Pipe(duplex=True)
        self._process = context.Process(
            target=_child_main,
            args=(child, settings_environment(), os.getpid()),
            name="textmine-topics",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._result: TopicResult | None = None
        self._sender: threading.Thread | None = None

    @property
    def started(self) -> bool:
        """True once the process has been given the sentences."""
        return self.n_sentences is not None

    def start(self, sentences: pd.DataFrame, documents: pd.DataFrame) -> None:
        """Fit the topics of these sentences (sentence columns) and documents (dates).

        Returns at once: the sentences are sent on a thread, as the process
        reads them only once its libraries are loaded (a pipe holds 64 KiB, so
        sending here would wait for that).
        """
        self.n_sentences = len(sentences)
        message = (self.settings, sentences, documents, self.with_figure)
        self._sender = threading.Thread(
            target=self._send, args=(message,), name="textmine-topics-send", daemon=True
        )
        self._sender.start()

    def _send(self, message: tuple) -> None:
        with contextlib.suppress(OSError):  # the process is gone: `result` says so
            self._connection.send(message)

    def _sent(self) -> None:
        """Wait until the sentences are sent (or the process is found gone)."""
        if self._sender is not None:
            self._sender.join()

    def result(self, status: Callable[[str], None] | None = None) -> TopicResult:
        """Wait for the topic stage; `status` is told what it is doing meanwhile."""
        if self._result is not None:
            return self._result
        if not self.started:
            raise RuntimeError("the topic process was not given any sentences")
        say = status or (lambda text: None)
        self._sent()
        try:
            while True:
                kind, value = self._connection.recv()
                if kind == "status":
                    say(value)
                    continue
                self._result = value
                break
        except (EOFError, OSError):
            self._result = TopicResult(
                None,
                error=RuntimeError(
                    f"the topic process ended without a result (exit code {self._process.exitcode})"
                ),
            )
        finally:
            self._connection.close()
            self._process.join()
        return self._result

    def cancel(self) -> None:
        """Stop the topic process (its work is not needed) and wait for it to end."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._sent()  # a send to the ended process fails at once
        self._connection.close()

    def matches(self, sentences_total: int) -> bool:
        """True when the job was given as many sentences as the store holds coded now."""
        return self.n_sentences == sentences_total

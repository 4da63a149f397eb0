"""Topics of paragraph-sized chunks with BERTopic, offline and torch-free by default.

Steps, one module each: `chunks` (sentences -> paragraphs), `embed` (TF-IDF ->
SVD -> L2 normalisation, cached beside the model), `fit` (`run_topics`: BERTopic
with exact k-nearest neighbours -> UMAP -> HDBSCAN, or PCA -> KMeans for small
corpora; outlier reduction; or assignment to a saved model), `tables` (topic
names, representative paragraphs, topics over time) and `persist` (the saved
model, the embedding cache, the CSV files). `settings` holds `TopicSettings`.
"""

from textmine.topics.chunks import CHUNK_COLUMNS, build_chunks
from textmine.topics.embed import (
    DOMAIN_STOP_WORDS,
    SentenceTransformerEmbedder,
    TfidfSvdEmbedder,
    embed_chunks,
    load_embedder,
    stop_words,
)
from textmine.topics.fit import run_topics, seed_random_generators, seed_topics_from_codebook
from textmine.topics.persist import write_topic_tables
from textmine.topics.settings import TFIDF_SVD, TopicModelError, TopicSettings
from textmine.topics.tables import (
    DOC_TOPIC_COLUMNS,
    TOPIC_COLUMNS,
    TOPICS_OVER_TIME_COLUMNS,
    TopicOutputs,
    topic_name,
    topics_over_time_table,
)

__all__ = [
    "CHUNK_COLUMNS",
    "DOC_TOPIC_COLUMNS",
    "DOMAIN_STOP_WORDS",
    "TFIDF_SVD",
    "TOPICS_OVER_TIME_COLUMNS",
    "TOPIC_COLUMNS",
    "SentenceTransformerEmbedder",
    "TfidfSvdEmbedder",
    "TopicModelError",
    "TopicOutputs",
    "TopicSettings",
    "build_chunks",
    "embed_chunks",
    "load_embedder",
    "run_topics",
    "seed_random_generators",
    "seed_topics_from_codebook",
    "stop_words",
    "topic_name",
    "topics_over_time_table",
    "write_topic_tables",
]

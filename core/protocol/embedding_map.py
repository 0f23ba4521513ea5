"""Embedding maps (`ecgcl embed --plot map.png`): a 2-D picture of the encoder's embedding space.

The embeddings are reduced to two dimensions with UMAP (McInnes et al., "UMAP: Uniform Manifold Approximation and
Projection", 2018; `umap-learn`, n_neighbors 15, min_dist 0.1) where it is installed, else t-SNE (van der Maaten
and Hinton, JMLR 2008; scikit-learn, PCA initialisation, perplexity min(30, (n - 1) / 3)), seeded, so the same
seed draws the same map. Points are coloured by the store's labels (one label, "multiple" for a record with
several, "unlabelled") or by any metadata column (`--color-by`): a numeric column with more than two distinct values
gets a colorbar, any other (text, or 0/1 codes such as a sex column) a legend of its 12 most frequent values, the
rest grouped as "other" (grey, like records without a value). The caption names the method and its parameters.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgcl.errors import EcgclError, did_you_mean

MAP_METHODS = ("auto", "umap", "tsne")
PLOT_SUFFIXES = (".png", ".pdf", ".svg")
MIN_RECORDS = 5
MAX_CATEGORIES = 12
LABELS = "labels"  # the default colouring: the store's label column
NEUTRAL = {"other": "#9e9e9e", "unlabelled": "#d0d0d0", "missing": "#d0d0d0"}  # grey groups, listed last


@dataclass
class EmbeddingMap:
    """What `draw_embedding_map` drew: the file, the 2-D coordinates (records x 2), the method used ("umap" or
    "tsne"), the caption, the legend's entries (empty with a colorbar) and the column behind the colorbar."""

    path: Path
    coords: Any
    method: str
    caption: str
    legend: list[str] = field(default_factory=list)
    colorbar: str | None = None
    size: tuple[int, int] = (0, 0)


def _has_umap() -> bool:
    return importlib.util.find_spec("umap") is not None


def check_map_request(plot: str | os.PathLike, *, method: str = "auto", color_by: str | None = None,
                      columns=(), records: int | None = None, store: str = "the store") -> str:
    """Check a map request before anything is computed; return the method to use ("umap" or "tsne")."""
    suffix = Path(plot).suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise EcgclError(f"--plot {plot} must end in {', '.join(PLOT_SUFFIXES)}")
    if method not in MAP_METHODS:
        raise EcgclError(f"--map-method {method!r} is not one of {', '.join(MAP_METHODS)}{did_you_mean(method, MAP_METHODS)}")
    if method == "umap" and not _has_umap():
        raise EcgclError("--map-method umap needs umap-learn: pip install umap-learn (or use --map-method tsne)")
    columns = list(columns)
    if color_by is not None and color_by not in columns:
        raise EcgclError(f"--color-by {color_by!r} is not a metadata column of {store}{did_you_mean(color_by, columns)}"
                         f" (columns: {', '.join(map(str, columns))})")
    if records is not None and records < MIN_RECORDS:
        raise EcgclError(f"--plot needs at least {MIN_RECORDS} records for a 2-D map; there are {records}")
    return ("umap" if _has_umap() else "tsne") if method == "auto" else method


def map_coordinates(vectors, *, method: str = "auto", seed: int = 0) -> tuple[Any, str, str]:
    """The (records, 2) coordinates of `vectors` (records x dim), the method used and its caption text."""
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float64)
    n = len(vectors)
    method = check_map_request("map.png", method=method, records=n)
    if method == "umap":
        import umap

        neighbours = min(15, n - 1)
        coords = umap.UMAP(n_components=2, n_neighbors=neighbours, min_dist=0.1, random_state=seed).fit_transform(vectors)
        caption = f"UMAP (umap-learn), n_neighbors {neighbours}, min_dist 0.1, seed {seed}, {n} records"
    else:
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (n - 1) / 3)
        coords = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(vectors)
        caption = f"t-SNE (scikit-learn), perplexity {perplexity:g}, seed {seed}, {n} records"
    return np.asarray(coords, dtype=np.float64), method, caption


def label_categories(labels) -> Any:
    """The default colouring: "unlabelled", the one label, or "multiple" (several labels) per record."""
    import pandas as pd

    text = pd.Series(labels).fillna("").astype(str).str.strip()
    count = text.str.count(";") + 1
    return text.where(count == 1, "multiple").mask(text == "", "unlabelled")


def draw_embedding_map(vectors, metadata, path: str | os.PathLike, *, color_by: str | None = None,
                       method: str = "auto", seed: int = 0, title: str | None = None, dpi: int = 110) -> EmbeddingMap:
    """Reduce `vectors` to 2-D and draw them coloured by `color_by` (a column of `metadata`, one row per vector;
    default: the labels) to `path` (.png, .pdf, .svg), written to a temporary file and renamed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from ecgcl.files import finish_figure, make_folders

    column = color_by or LABELS
    check_map_request(path, method=method, color_by=column, columns=metadata.columns, records=len(vectors))
    coords, used, caption = map_coordinates(vectors, method=method, seed=seed)
    values = metadata[column].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6, 5))
    legend, colorbar = [], None
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > 2:
        known = values.notna().to_numpy()
        ax.scatter(*coords[~known].T, s=12, c="lightgrey", label="missing")
        points = ax.scatter(*coords[known].T, s=12, c=values[known].to_numpy(dtype=float), cmap="viridis")
        fig.colorbar(points, ax=ax, label=column)
        colorbar = column
    else:
        groups = label_categories(values) if column == LABELS else values.astype(object).where(values.notna(), "missing")
        groups = groups.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
        counts = groups.value_counts()
        order = sorted(counts.index, key=lambda name: (-counts[name], name))
        kept = [name for name in order if name not in NEUTRAL][:MAX_CATEGORIES]
        groups = groups.where(groups.isin(kept) | groups.isin(NEUTRAL), "other")
        legend = kept + [name for name in NEUTRAL if (groups == name).any()]
        groups = groups.to_numpy()
        palette = plt.get_cmap("tab20" if len(kept) > 10 else "tab10")
        for index, name in enumerate(legend):  # the grey groups (no value, other) last, under the legend's colours
            colour = palette(index) if name not in NEUTRAL else NEUTRAL[name]
            ax.scatter(*coords[groups == name].T, s=12, color=colour, label=name, zorder=1 if name in NEUTRAL else 2)
        ax.legend(title=column, fontsize=7, title_fontsize=8, loc="best", markerscale=1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"Embeddings coloured by {column}", fontsize=10)
    fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    size = (int(round(fig.get_figwidth() * dpi)), int(round(fig.get_figheight() * dpi)))
    make_folders(Path(path).parent, "plot folder")
    finish_figure(path, fig, what="embedding map", dpi=dpi, layout=False)
    return EmbeddingMap(path=Path(path), coords=coords, method=used, caption=caption, legend=legend,
                        colorbar=colorbar, size=size)


def embed_and_map(checkpoint: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, *,
                  plot: str | os.PathLike, color_by: str | None = None, method: str = "auto", seed: int = 0,
                  record_ids: list[str] | None = None, record_source: str = "the request",
                  **embed_options: Any) -> tuple[dict[str, Any], EmbeddingMap]:
    """`embed_checkpoint` (see `ecgcl.engine.embeddings`), then the map of what it wrote. The map request is
    checked before anything is embedded, so a mistake costs nothing and writes nothing."""
    import numpy as np
    import pandas as pd

    from ecgcl.data.store import open_store
    from ecgcl.engine.embeddings import embed_checkpoint, select_rows

    store = open_store(data)
    rows = select_rows(store, record_ids, source=record_source)
    check_map_request(plot, method=method, color_by=color_by, columns=store.metadata.columns, records=len(rows),
                      store=f"store {store.path}")
    summary = embed_checkpoint(checkpoint, data, out, record_ids=record_ids, record_source=record_source,
                               **embed_options)
    if Path(out).suffix == ".npy":
        vectors = np.load(out)
    else:
        table = pd.read_parquet(out)
        vectors = table[[f"emb_{i}" for i in range(summary["embed_dim"])]].to_numpy()
    metadata = store.metadata.iloc[rows].reset_index(drop=True)
    return summary, draw_embedding_map(vectors, metadata, plot, color_by=color_by, method=method, seed=seed)

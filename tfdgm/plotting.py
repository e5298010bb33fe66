"""Pictures: sample grids, 2-D scatter plots and density heat maps, training curves.

Everything returns a matplotlib ``Figure`` laid out so that titles and axis labels stay
inside it; :func:`save` writes one (and shows it inline when a lab is opened as a
notebook). Outside a notebook, and unless ``MPLBACKEND`` says otherwise, matplotlib
draws with Agg (no screen needed).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

import matplotlib

if "ipykernel" not in sys.modules and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")  # a notebook keeps its inline backend
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: Gap between the images of a grid, as a fraction of one image's width.
GRID_GAP = 0.08


def save(fig: plt.Figure, path: str, dpi: int = 100) -> str:
    """Write ``fig`` to ``path`` (its labels never clipped); show it inline under an
    interactive backend (a notebook), else close it. Returns ``path``."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    if matplotlib.get_backend().lower() in ("agg", "pdf", "ps", "svg", "cairo", "template"):
        plt.close(fig)
    else:
        plt.show()
    return path


def image_grid(
    images,
    image_shape: Sequence[int],
    ncols: int = 8,
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> plt.Figure:
    """Tile flat or shaped images ``[n, ...]`` into a grid of ``ncols`` columns, with
    a gap of ``GRID_GAP`` of an image between neighbours and the title above the top row."""
    images = np.asarray(images, dtype=np.float32)
    shape = tuple(image_shape)[:2]
    images = images.reshape(len(images), *shape)
    ncols = max(1, min(ncols, len(images)))
    nrows = max(1, -(-len(images) // ncols))
    cell, margin = 0.8, 0.05  # inches per image, border
    head = 0.35 if title else 0.0  # inches reserved for the title
    width = ncols * cell + 2 * margin
    height = nrows * cell + 2 * margin + head
    fig = plt.figure(figsize=(width, height))
    # One Axes holding every image, in inches from its top left corner (an Axes per image
    # cost ~15 ms each to make and draw: 0.9 s of CPU for a grid of 64). Each image is
    # laid out as a grid of Axes would: cells GRID_GAP of a cell apart, the image as large
    # as its aspect lets it be in its cell, centred.
    area_w, area_h = ncols * cell, nrows * cell
    ax = fig.add_axes((margin / width, margin / height, area_w / width, area_h / height))
    ax.axis("off")
    ax.set_xlim(0, area_w)
    ax.set_ylim(area_h, 0)
    cell_w = area_w / (ncols + (ncols - 1) * GRID_GAP)
    cell_h = area_h / (nrows + (nrows - 1) * GRID_GAP)
    scale = min(cell_w / shape[1], cell_h / shape[0])  # inches per pixel
    w, h = shape[1] * scale, shape[0] * scale
    for i, image in enumerate(images):
        row, col = divmod(i, ncols)
        x = col * cell_w * (1 + GRID_GAP) + (cell_w - w) / 2
        y = row * cell_h * (1 + GRID_GAP) + (cell_h - h) / 2
        ax.imshow(image, cmap="gray_r", vmin=vmin, vmax=vmax, interpolation="nearest",
                  extent=(x, x + w, y + h, y), aspect="auto")  # fmt: skip
    if title:
        fig.suptitle(title, y=1 - margin / height, va="top")
    return fig


def scatter_2d(points, title: str | None = None, ax=None, s: float = 2.0, **kwargs):
    """Scatter plot of 2-D points; returns the figure."""
    points = np.asarray(points)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4), layout="compressed")
    else:
        fig = ax.figure
    ax.scatter(points[:, 0], points[:, 1], s=s, alpha=0.5, **kwargs)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return fig


def density_2d(
    log_prob_fn: Callable,
    bounds: Sequence[float] = (-4, 4),
    resolution: int = 200,
    data=None,
    title: str | None = None,
) -> plt.Figure:
    """Heat map of ``exp(log_prob_fn(points))`` on a square grid, beside the data if given."""
    lo, hi = bounds
    axis = np.linspace(lo, hi, resolution, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    density = np.exp(np.asarray(log_prob_fn(grid), dtype=np.float64)).reshape(
        resolution, resolution
    )
    ncols = 1 if data is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(4 * ncols, 4), layout="compressed")
    axes = np.atleast_1d(axes)
    if data is not None:
        scatter_2d(data, title="data", ax=axes[0])
        axes[0].set_xlim(lo, hi)
        axes[0].set_ylim(lo, hi)
    axes[-1].imshow(density, origin="lower", extent=(lo, hi, lo, hi), cmap="viridis")
    axes[-1].set_title(title or "model density")
    return fig


def training_curve(history: dict, keys: Sequence[str] | None = None) -> plt.Figure:
    """Plot the per-epoch metrics of a Keras ``History.history`` dict (train and ``val_``)
    against epochs 1, 2, ..., with a marker at every epoch (one epoch is a visible point)."""
    keys = keys or [k for k in history if not k.startswith("val_")]
    fig, axes = plt.subplots(
        1, len(keys), figsize=(3.5 * len(keys), 3), squeeze=False, layout="constrained"
    )
    for ax, key in zip(axes[0], keys):
        for name, label in ((key, "train"), (f"val_{key}", "test")):
            if name in history:
                values = np.asarray(history[name], dtype=np.float64)
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, marker="o", markersize=3 if len(values) > 20 else 5,
                        label=label)  # fmt: skip
        ax.set_title(key)
        ax.set_xlabel("epoch")
        if len(history[key]) <= 10:
            ax.set_xticks(np.arange(1, len(history[key]) + 1))  # whole epochs only
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
    return fig


def model_figures(model, dataset) -> dict:
    """``GenerativeModel.figures``' pictures, ``{file stem: Figure}``: a grid of 64 samples
    for image data; for 2-D data, test data beside 2,000 samples and, with a density, its
    heat map; nothing for a model of named modalities."""
    figures = {}
    if model.events is not None:
        return figures
    if dataset.image_shape is not None:
        samples = np.asarray(model.sample(64, seed=(0, 1)))
        vmax = (dataset.num_categories - 1) if dataset.support == "categorical" else 1
        grid = image_grid(samples, dataset.image_shape, title="samples", vmin=0, vmax=vmax)
        figures["samples"] = grid
    elif tuple(dataset.event_shape) == (2,):
        more = np.asarray(model.sample(2000, seed=(0, 2)))
        fig, axes = plt.subplots(
            1, 2, figsize=(8, 4), sharex=True, sharey=True, layout="compressed"
        )
        scatter_2d(dataset.x_test, title="test data", ax=axes[0])
        scatter_2d(more, title="model samples", ax=axes[1])
        figures["samples"] = fig
        if model.has_density:
            figures["density"] = density_2d(lambda g: model.log_prob(g), data=dataset.x_test)
    return figures

"""Pictures: sample grids, 2-D scatter plots and density heat maps, training curves.

Everything returns a matplotlib ``Figure`` (Agg backend, no screen needed); save it with
``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def image_grid(
    images,
    image_shape: Sequence[int],
    ncols: int = 8,
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> plt.Figure:
    """Tile flat or shaped images ``[n, ...]`` into a grid of ``ncols`` columns."""
    images = np.asarray(images, dtype=np.float32)
    shape = tuple(image_shape)[:2]
    images = images.reshape(len(images), *shape)
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * 0.8, nrows * 0.8 + (0.4 if title else 0))
    )
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image in zip(axes, images):
        ax.imshow(image, cmap="gray_r", vmin=vmin, vmax=vmax, interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.tight_layout(pad=0.1)
    return fig


def scatter_2d(points, title: str | None = None, ax=None, s: float = 2.0, **kwargs):
    """Scatter plot of 2-D points; returns the figure."""
    points = np.asarray(points)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
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
    fig, axes = plt.subplots(1, ncols, figsize=(4 * ncols, 4))
    axes = np.atleast_1d(axes)
    if data is not None:
        scatter_2d(data, title="data", ax=axes[0])
        axes[0].set_xlim(lo, hi)
        axes[0].set_ylim(lo, hi)
    axes[-1].imshow(density, origin="lower", extent=(lo, hi, lo, hi), cmap="viridis")
    axes[-1].set_title(title or "model density")
    fig.tight_layout()
    return fig


def training_curve(history: dict, keys: Sequence[str] | None = None) -> plt.Figure:
    """Plot the per-epoch metrics of a Keras ``History.history`` dict (train and ``val_``)."""
    keys = keys or [k for k in history if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.5 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(history[f"val_{key}"], label="test")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    return fig

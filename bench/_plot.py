"""Grouped bar charts for benchmark scripts (matplotlib is a dev extra, imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def matplotlib_installed() -> bool:
    """Whether plots can be drawn; if not, say so (a dev extra, but maybe left out)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("no plot: matplotlib is not installed (.venv/bin/pip install matplotlib)")
        return False
    return True


def grouped_bars(
    path: Path,
    *,
    title: str,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    ylabel: str,
    log: bool = False,
    goal: float | None = None,
) -> None:
    """One cluster of bars per group, one bar per series; None draws no bar."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    width = 0.8 / max(1, len(series))
    figure, axes = plt.subplots(figsize=(2.2 + 2.0 * len(groups), 4.2))
    for k, (label, values) in enumerate(series.items()):
        xs = [g + (k - (len(series) - 1) / 2) * width for g in range(len(groups))]
        shown = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        bars = axes.bar([x for x, _ in shown], [v for _, v in shown], width, label=label)
        axes.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
    if goal is not None:
        axes.axhline(goal, color="grey", linestyle="--", linewidth=1, label=f"goal {goal:g}")
    axes.set_xticks(range(len(groups)), groups)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if log:
        from matplotlib.ticker import FuncFormatter

        axes.set_yscale("log")
        # Plain numbers (5, 20, 40), not 2x10^1, on the major and minor ticks alike.
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        axes.yaxis.set_major_formatter(plain)
        axes.yaxis.set_minor_formatter(plain)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)

"""Training and evaluation loss against the step, drawn in the terminal with plotext."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import RenderResult
from textual.content import Content
from textual_plotext import PlotextPlot

Point = tuple[int, float]


def downsample(points: Sequence[Point], limit: int) -> list[Point]:
    """At most `limit` points: consecutive points averaged in buckets (each at its first step), the last kept exact."""
    if len(points) <= limit or limit < 2:
        return list(points)
    size = -(-len(points) // (limit - 1))
    out = []
    for start in range(0, len(points) - 1, size):
        bucket = points[start : min(start + size, len(points) - 1)]
        out.append((bucket[0][0], sum(v for _, v in bucket) / len(bucket)))
    out.append(points[-1])
    return out


class LossCurve(PlotextPlot):
    """Train loss as a line, eval loss as markers; set the data with `show`."""

    DEFAULT_CSS = """
    LossCurve {
        height: 1fr;
        min-height: 8;
        & > .loss-curve--empty { color: $text-muted; }
    }
    """

    EMPTY = "no loss logged yet"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.train: list[Point] = []
        """(step, loss) of every logged training step."""
        self.evals: list[Point] = []
        """(step, eval loss) of every evaluation."""

    def show(self, train: Sequence[Point], evals: Sequence[Point]) -> None:
        """Draw these curves (redraws only when they changed)."""
        if list(train) == self.train and list(evals) == self.evals:
            return
        self.train, self.evals = list(train), list(evals)
        self.refresh()

    def render(self) -> RenderResult:
        if not self.train and not self.evals:
            return Content.styled(self.EMPTY, "$text-muted")
        plt = self.plt
        plt.clear_data()
        plt.xlabel("step")
        limit = max(2, self.size.width * 2)
        if self.train:
            xs, ys = zip(*downsample(self.train, limit), strict=True)
            plt.plot(list(xs), list(ys), marker="braille", color="cyan", label="train")
        if self.evals:
            xs, ys = zip(*downsample(self.evals, limit), strict=True)
            plt.plot(list(xs), list(ys), marker="dot", color="orange", label="eval")
        return super().render()

"""Statistical process control against the bundle's reference: has the line drifted?

An EWMA chart per measure (the score of passed parts; brightness, contrast and sharpness of
every frame) starts at the reference mean and follows the line with weight `lam`. Its control
limit is the reference's spread scaled to the EWMA (`limit_sigma` standard deviations of the
average), widened to at least `floor` of the reference mean: a change the eye cannot see (a few
per cent of brightness) or a noise level the reference underestimates (a handful of training
images) must not wake anyone. A chart is out when its average passes the limit; the alarm clears
when every chart has been back inside for `clear_after` parts in a row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Which way each measure may drift and still matter: scores only up; the image both ways.
DIRECTIONS = {"score": "up", "brightness": "both", "contrast": "both", "sharpness": "both"}
# The smallest limit per measure, as a share of its reference mean.
FLOORS = {"score": 0.10, "brightness": 0.05, "contrast": 0.10, "sharpness": 0.25}


@dataclass
class Chart:
    name: str
    mean: float
    std: float
    lam: float
    limit_sigma: float
    floor: float  # the smallest limit, as a share of the reference mean
    direction: str = "both"
    value: float = field(init=False)
    count: int = 0

    def __post_init__(self) -> None:
        self.value = self.mean

    @property
    def limit(self) -> float:
        """How far the average may stray from the reference mean."""
        spread = self.limit_sigma * self.std * math.sqrt(self.lam / (2 - self.lam))
        return max(spread, self.floor * abs(self.mean))

    def update(self, x: float) -> None:
        self.value = self.lam * x + (1 - self.lam) * self.value
        self.count += 1

    @property
    def out(self) -> bool:
        shift = self.value - self.mean
        if self.direction == "up":
            return shift > self.limit
        return abs(shift) > self.limit

    def figures(self) -> dict:
        return {
            "ewma": round(self.value, 6),
            "reference": round(self.mean, 6),
            "limit": round(self.limit, 6),
            "shift": round(self.value - self.mean, 6),
            "out": self.out,
        }


@dataclass
class Monitor:
    """The charts, and the alarm with its hysteresis."""

    charts: dict[str, Chart]
    clear_after: int
    active: bool = False
    parts: int = 0
    inside_run: int = 0  # parts in a row with every chart inside
    raised_at_part: int | None = None

    def update(self, score: float | None, health: dict[str, float]) -> bool | None:
        """Take one part: its score when it passed (None otherwise) and its image health.
        Returns True when the alarm is raised by this part, False when it clears, else None."""
        self.parts += 1
        if score is not None and "score" in self.charts:
            self.charts["score"].update(score)
        for name, x in health.items():
            if name in self.charts:
                self.charts[name].update(x)
        out = [c.name for c in self.charts.values() if c.out]
        if out and not self.active:
            self.active, self.raised_at_part, self.inside_run = True, self.parts, 0
            return True
        if self.active:
            self.inside_run = 0 if out else self.inside_run + 1
            if self.inside_run >= self.clear_after:
                self.active, self.raised_at_part = False, None
                return False
        return None

    def reasons(self) -> list[dict]:
        return [{"check": c.name, **c.figures()} for c in self.charts.values() if c.out]

    def figures(self) -> dict:
        return {name: c.figures() for name, c in self.charts.items()}


def monitor(
    reference: dict[str, tuple[float, float]], weight: float, limit_sigma: float, clear_after: int
) -> Monitor:
    """A monitor with a chart per measure in `reference` (name -> (mean, std))."""
    charts = {
        name: Chart(name, mean, std, weight, limit_sigma, FLOORS[name], DIRECTIONS[name])
        for name, (mean, std) in reference.items()
    }
    return Monitor(charts, clear_after)

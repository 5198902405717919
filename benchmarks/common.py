"""Shared pieces of pivot's benchmarks: the Result record and a timer."""
import dataclasses
import time


@dataclasses.dataclass(frozen=True)
class Result:
    """One side-by-side measurement. ``ratio`` > 1 means pivot is better than the peer."""
    name: str          # JSON key, e.g. "engine_b1_vs_torch"
    ratio: float
    pivot: float = float("nan")   # pivot's measurement, in `unit`
    peer: float = float("nan")    # the peer's measurement, in `unit`
    unit: str = ""
    detail: str = ""

    def pivot_text(self):
        return f"{self.pivot:.4g} {self.unit}".strip()

    def peer_text(self):
        return f"{self.peer:.4g} {self.unit}".strip()


def best_time(fn, repeat=5, number=1, warmup=1):
    """Best wall-clock seconds of one call of fn over `repeat` rounds of `number` calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best

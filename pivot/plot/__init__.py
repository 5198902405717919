"""Plots (matplotlib). Every function labels its axes with units and returns its Figure.

Imported on first use of ``pivot.plot``; importing pivot alone does not import matplotlib.
"""
__all__ = []

# --- simulator plots
from ._sim import delay_breakdown, delay_energy_front, design_space  # noqa: E402

__all__ += ["delay_breakdown", "design_space", "delay_energy_front"]
# --- end simulator plots

# --- cka plots
from ._cka import cka_heatmap  # noqa: E402

__all__ += ["cka_heatmap"]
# --- end cka plots

# --- search plots
from ._search import accuracy_edp_front, edp_split, edp_vs_lec  # noqa: E402

__all__ += ["edp_vs_lec", "edp_split", "accuracy_edp_front"]
# --- end search plots

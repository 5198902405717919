"""Plots (matplotlib). Every function labels its axes with units and returns its Figure.

Imported on first use of ``pivot.plot``; importing pivot alone does not import matplotlib.
"""
from ._sim import delay_breakdown
from ._cka import cka_heatmap
from ._search import accuracy_edp_front, edp_split, edp_vs_lec

from ._paths import path_selection

__all__ = ["delay_breakdown", "cka_heatmap", "edp_vs_lec", "edp_split", "accuracy_edp_front", "path_selection"]

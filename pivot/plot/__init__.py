"""Plots (matplotlib). Every function labels its axes with units and returns its Figure, a
``matplotlib.figure.Figure`` outside pyplot's state: Jupyter shows a returned figure once,
``fig.savefig(path)`` writes it, and nothing accumulates in pyplot.

Imported on first use of ``pivot.plot``; importing pivot alone does not import matplotlib.
"""
from ._sim import delay_breakdown, delay_energy_front, design_space
from ._cka import cka_heatmap
from ._search import accuracy_edp_front, edp_split, edp_vs_lec

from ._paths import path_selection
from ._explorer import CKAExplorer, cka_explorer, path_cells

__all__ = ["delay_breakdown", "design_space", "delay_energy_front", "cka_heatmap", "edp_vs_lec", "edp_split",
           "accuracy_edp_front", "path_selection", "cka_explorer", "CKAExplorer", "path_cells"]

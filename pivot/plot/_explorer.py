"""An interactive CKA explorer (ipywidgets): choose an effort, see its ranked paths and the chosen
path on the heatmap; pick a cell to read its pair and value."""
from __future__ import annotations

import numpy as np

from ._cka import cka_heatmap


def path_cells(path) -> list:
    """The (i, j) cells of the CKA matrix that a path's Path-Score sums (Algorithm 1): for each
    active encoder i, the skipped encoders j that follow it up to the next active one."""
    bits = [int(v) != 0 for v in path]
    cells = []
    for i, active in enumerate(bits):
        if not active:
            continue
        for j in range(i + 1, len(bits)):
            if bits[j]:
                break
            cells.append((i, j))
    return cells


def _bits(path) -> str:
    return "".join(str(int(v)) for v in path)


class CKAExplorer:
    """What :func:`cka_explorer` returns: the state of the explorer and its controls.

    ``cka`` the matrix; ``effort``, ``path`` (the chosen path, a tuple of 0/1) and ``cell`` (the
    picked (i, j) or None) the current choice; ``ranked`` the chosen effort's listed paths
    (``ScoredPath``, best Path-Score first; an effort model's own path first when ``efforts`` were
    given); ``text`` the readout; ``figure`` the heatmap with the chosen path drawn;
    ``widget`` the ipywidgets box (None without ipywidgets). ``select_effort``,
    ``select_path`` and ``select_cell`` change the choice, as the controls do.
    """

    def __init__(self, cka, efforts=None, images=None, labels=None, top_k=5, effort=None, threads=None):
        self.cka = np.asarray(cka, dtype=np.float64)
        depth = self.cka.shape[0]
        self.efforts = dict(efforts) if efforts else {}
        self.top_k = top_k
        self._accuracy = {}
        if self.efforts and images is not None and labels is not None:
            for e, model in sorted(self.efforts.items()):
                predicted = np.argmax(model(images, threads=threads), axis=1)
                self._accuracy[int(e)] = float(np.mean(predicted == np.asarray(labels)))
        self.n_images = 0 if images is None else len(images)
        choices = sorted(int(e) for e in self.efforts) if self.efforts else list(range(1, depth))
        self.choices = [e for e in choices if 0 < e <= depth]
        if not self.choices:
            raise ValueError(f"no effort to explore: efforts {sorted(self.efforts)} for a {depth}-encoder matrix")
        self.effort = None
        self.path = None
        self.cell = None
        self.ranked = []
        self.widget = None
        self._controls = None
        start = effort if effort is not None else self.choices[len(self.choices) // 2]
        self.select_effort(start)

    # ------------------------------------------------------------------ the state

    def _own_path(self, effort):
        model = self.efforts.get(effort)
        return None if model is None or model.path is None else tuple(int(v) for v in model.path)

    def select_effort(self, effort):
        """Choose an effort: its ranked paths are listed and the first is drawn."""
        from .. import ScoredPath, path_score, rank_paths
        effort = int(effort)
        if effort not in self.choices:
            raise ValueError(f"effort must be one of {self.choices}, got {effort}")
        self.effort = effort
        ranked = rank_paths(self.cka, effort, top_k=self.top_k)
        own = self._own_path(effort)
        if own is not None:
            ranked = [ScoredPath(effort, own, path_score(self.cka, own))] + [sp for sp in ranked if sp.path != own]
        self.ranked = ranked
        self.path = ranked[0].path
        if self._controls is not None:
            self._sync_controls()
        self._redraw()
        return self

    def select_path(self, rank: int):
        """Choose the ``rank``-th listed path (0: the first) of the current effort."""
        if not 0 <= rank < len(self.ranked):
            raise ValueError(f"rank must be in [0, {len(self.ranked)}), got {rank}")
        self.path = self.ranked[rank].path
        self._redraw()
        return self

    def select_cell(self, i: int, j: int):
        """Pick the cell (i, j): row i = MLP output of encoder i, column j = attention output A_j."""
        rows, cols = self.cka.shape
        if not (0 <= i < rows and 0 <= j < cols):
            raise ValueError(f"cell ({i}, {j}) is outside the {rows} x {cols} matrix")
        self.cell = (int(i), int(j))
        self._redraw()
        return self

    @property
    def score(self) -> float:
        """The chosen path's Path-Score."""
        from .. import path_score
        return float(path_score(self.cka, self.path))

    @property
    def text(self) -> str:
        """The readout: effort, chosen path, its Path-Score, the effort model's accuracy, the picked cell."""
        own = self._own_path(self.effort)
        which = "the effort model's own (fine-tuned) path" if own == self.path else "ranked by Path-Score"
        lines = [f"effort {self.effort}: path {_bits(self.path)} ({which}), Path-Score {self.score:.3f}"]
        if self.effort in self._accuracy:
            lines.append(f"accuracy of efforts[{self.effort}] (path {_bits(own)}) on {self.n_images} images: "
                         f"{100 * self._accuracy[self.effort]:.2f}%")
        if self.cell is not None:
            i, j = self.cell
            lines.append(f"cell (i={i}, j={j}): CKA(MLP_{i}, A_{j}) = {self.cka[i, j]:.4f}"
                         + (" (in this path's Path-Score)" if (i, j) in path_cells(self.path) else ""))
        return "\n".join(lines)

    def ranked_text(self) -> str:
        """The listed paths of the current effort, one per line."""
        own = self._own_path(self.effort)
        return "\n".join(f"{k}. {_bits(sp.path)}  Path-Score {sp.score:.3f}"
                         + ("  (efforts[e].path)" if sp.path == own else "") for k, sp in enumerate(self.ranked))

    # ------------------------------------------------------------------ drawing

    def draw(self):
        """The heatmap (a Figure not managed by pyplot) with the chosen path: outlined cells are the
        ones its Path-Score sums, the encoders it skips are marked on both axes."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
        rows, cols = self.cka.shape
        fig = Figure(figsize=(1.6 + 0.45 * cols, 1.2 + 0.45 * rows), layout="constrained")
        ax = fig.subplots()
        cka_heatmap(self.cka, ax=ax, upper_only=True,
                    title=f"effort {self.effort}: path {_bits(self.path)}, Path-Score {self.score:.3f}")
        for i, j in path_cells(self.path):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        skipped = [k for k, bit in enumerate(self.path) if not bit]
        for k in skipped:  # skipped encoders: their attention column label in red
            ax.get_xticklabels()[k].set_color("red")
        ax.set_xlabel("attention output A_j of encoder j\n(red: skipped; red boxes: the cells its Path-Score sums)")
        if self.cell is not None:
            i, j = self.cell
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="white", linewidth=2.5,
                                   linestyle="--"))
        return fig

    def _redraw(self):
        """Bring the widgets in line with the state (no figure is drawn: ``draw`` makes one on demand)."""
        c = self._controls
        if c is None:
            return
        import matplotlib
        colours = matplotlib.colormaps["viridis"]
        cells = set(path_cells(self.path))
        rows, cols = self.cka.shape
        finite = self.cka[np.isfinite(self.cka)]
        low = min(0.0, float(finite.min())) if finite.size else 0.0
        high = max(1.0, float(finite.max())) if finite.size else 1.0
        for (i, j), button in c["cells"].items():
            value = self.cka[i, j]
            if np.isfinite(value):
                level = (value - low) / (high - low)
                button.style.button_color = matplotlib.colors.to_hex(colours(level))
                button.style.text_color = "black" if level > 0.5 else "white"
            else:
                button.style.button_color = "#ffffff"
            edge = "3px solid red" if (i, j) in cells else ("3px dashed white" if self.cell == (i, j) else
                                                            "1px solid #dddddd")
            button.layout.border = edge
        for k, label in enumerate(c["columns"]):
            skipped = not self.path[k]
            label.value = (f"<b style='color:red'>A{k}</b>" if skipped else f"<b>A{k}</b>")
        c["info"].value = "<pre>" + self.text + "</pre>"

    # ------------------------------------------------------------------ widgets

    def _sync_controls(self):
        c = self._controls
        c["busy"] = True
        try:
            c["effort"].value = self.effort
            c["paths"].options = [(line, k) for k, line in enumerate(self.ranked_text().splitlines())]
            c["paths"].value = 0
        finally:
            c["busy"] = False

    def build_widget(self, ipywidgets):
        """The controls: an effort slider, the ranked paths, the heatmap as a grid of cells (hover a
        cell for its pair and value, click it to read it below) and the readout."""
        rows, cols = self.cka.shape
        c = {"busy": False}
        c["effort"] = ipywidgets.SelectionSlider(options=self.choices, value=self.effort, description="effort")
        c["paths"] = ipywidgets.Select(options=[], rows=min(len(self.ranked) + 1, 8), description="paths",
                                       layout=ipywidgets.Layout(width="95%"))
        size = "42px"
        c["columns"] = [ipywidgets.HTML(layout=ipywidgets.Layout(width=size)) for _ in range(cols)]
        c["cells"] = {}
        grid = [ipywidgets.HTML("<small>MLP_i \\ A_j</small>", layout=ipywidgets.Layout(width=size))]
        grid += c["columns"]
        for i in range(rows):
            grid.append(ipywidgets.HTML(f"<b>MLP{i}</b>", layout=ipywidgets.Layout(width=size)))
            for j in range(cols):
                value = self.cka[i, j]
                button = ipywidgets.Button(description=f"{value:.2f}" if np.isfinite(value) else "",
                                           tooltip=f"(i={i}, j={j}): CKA(MLP_{i}, A_{j}) = {value:.4f}",
                                           layout=ipywidgets.Layout(width=size, height="26px", padding="0"))
                button.on_click(lambda _button, i=i, j=j: self.select_cell(i, j))
                c["cells"][(i, j)] = button
                grid.append(button)
        c["grid"] = ipywidgets.GridBox(grid, layout=ipywidgets.Layout(
            grid_template_columns=f"repeat({cols + 1}, {size})", grid_gap="1px"))
        c["info"] = ipywidgets.HTML()
        note = ipywidgets.HTML("<small>red boxes: the cells the chosen path's Path-Score sums; red columns: the "
                               "attentions it skips; hover a cell for its pair and value, click it to read it "
                               "below</small>")
        self._controls = c
        self._sync_controls()

        def on_effort(change):
            if not c["busy"]:
                self.select_effort(change["new"])

        def on_path(change):
            if not c["busy"] and change["new"] is not None:
                self.select_path(change["new"])

        c["effort"].observe(on_effort, names="value")
        c["paths"].observe(on_path, names="value")
        self.widget = ipywidgets.VBox([c["effort"], c["paths"], c["grid"], note, c["info"]])
        self._redraw()
        return self.widget

    def _ipython_display_(self):
        from IPython.display import display
        if self.widget is not None:
            display(self.widget)
        else:
            display(self.draw())
            print(self.text + "\n" + self.ranked_text())


def cka_explorer(model_or_matrix, efforts=None, *, images=None, labels=None, top_k: int = 5, effort=None,
                 threads=None, widgets: bool = True) -> CKAExplorer:
    """Explore a CKA matrix interactively: choose an effort and see its ranked paths (best
    Path-Score first), the chosen path drawn on the heatmap (the cells its Path-Score sums) with
    its Path-Score and, when ``efforts`` are given, the effort model's own path and its accuracy;
    pick a cell (i, j) to read CKA(MLP_i, A_j).

    Args:
        model_or_matrix: a (D, D) CKA matrix (``pivot.model_cka``, ``pivot.zoo.cka(name)``) or a
            ``pivot.ViT`` (its matrix is computed on ``images``).
        efforts: {effort: pivot.ViT} (e.g. ``pivot.zoo.load(name)``): the efforts to choose from;
            their own paths are listed first, and with ``images`` and ``labels`` their accuracy
            is shown. None: every effort 1..D-1 of the matrix.
        images, labels: images (N, C, H, W) and integer labels for the accuracy (and the CKA of a model).
        top_k: ranked paths listed per effort.
        effort: the effort shown first (default: the middle one).
        widgets: False gives the static figure even where ipywidgets is installed.

    Returns:
        A :class:`CKAExplorer`; displayed in Jupyter, it shows the controls (ipywidgets), or,
        without ipywidgets, the static heatmap and the ranked paths after a one-line note.
    """
    from ..model import ViT
    if isinstance(model_or_matrix, ViT):
        if images is None:
            raise ValueError("cka_explorer(model) computes the CKA matrix on images: pass images=")
        from .. import model_cka
        cka = model_cka(model_or_matrix, images, progress=False, threads=threads)
    else:
        cka = np.asarray(model_or_matrix, dtype=np.float64)
        if cka.ndim != 2 or cka.shape[0] != cka.shape[1] or cka.shape[0] < 2:
            raise ValueError(f"cka_explorer takes a square CKA matrix (D x D, D >= 2) or a pivot.ViT, "
                             f"got shape {cka.shape}")
    explorer = CKAExplorer(cka, efforts=efforts, images=images, labels=labels, top_k=top_k, effort=effort,
                           threads=threads)
    if widgets:
        try:
            import ipywidgets
        except ImportError:
            print("ipywidgets is not installed: showing the static figures "
                  "(python3 -m pip install ipywidgets for the interactive explorer)")
            return explorer
        explorer.build_widget(ipywidgets)
    return explorer

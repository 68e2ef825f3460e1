"""Pictures with matplotlib (a dependency; the Agg renderer, no display): figures, labels that
never overlap, PNG and SVG output, and self-contained HTML pages that carry the data a figure
was drawn from. Used by the replay tools (account timelines, what-if) and the load report.

Floats appear here only for drawing: every figure a picture states in text is the exact
decimal string it was given.
"""
from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any, Iterable

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text in SVG (searchable, smaller)
matplotlib.rcParams["svg.hashsalt"] = "perpengine"  # the same figure, the same SVG ids
PAD_PX = 2.0  # labels keep at least this far apart


def figure(width: float, height: float, rows: int = 1, cols: int = 1, **kw) -> tuple[Figure, Any]:
    """A figure with its own Agg canvas (no pyplot state) and its axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    return fig, axes


def renderer(fig: Figure):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def texts(fig: Figure) -> list[Text]:
    """Every text the figure draws (after a draw): titles, axis labels, legends, annotations,
    and the tick labels of the ticks inside each axis's view (matplotlib keeps other tick
    objects around without drawing them)."""
    tick_labels: set[int] = set()
    drawn: list[Text] = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for ticks in (axis.majorTicks, axis.minorTicks):
                for tick in ticks:
                    tick_labels.update((id(tick.label1), id(tick.label2)))
            lo, hi = sorted(axis.get_view_interval())
            tol = (hi - lo) * 1e-9
            for locs, ticks in ((axis.get_majorticklocs(), axis.get_major_ticks),
                                (axis.get_minorticklocs(), axis.get_minor_ticks)):
                for tick in ticks(len(locs)):
                    loc = tick.get_loc()
                    if loc is None or not lo - tol <= loc <= hi + tol:
                        continue
                    drawn += [t for t in (tick.label1, tick.label2)
                              if t.get_visible() and t.get_text().strip()]
    others = [t for t in fig.findobj(Text) if id(t) not in tick_labels and t.get_visible()
              and t.get_text().strip()]
    return others + drawn


def overlaps(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of texts whose drawn boxes intersect (after a draw): what the pictures must never
    have. Texts inside one legend are laid out by matplotlib and counted too."""
    r = renderer(fig)
    boxes = []
    fig_box = fig.bbox
    for t in texts(fig):
        box = t.get_window_extent(r)
        if box.width <= 0 or box.height <= 0:
            continue
        if not box.overlaps(fig_box):  # clipped tick labels outside the figure
            continue
        boxes.append((t.get_text(), box))
    found = []
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            if ba.overlaps(bb) and _intersection_area(ba, bb) > 0.5:
                found.append((a, b))
    return found


def _intersection_area(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, w) * max(0.0, h)


def place_labels(ax, labels: Iterable[tuple[float, float, str, dict]],
                 offset: tuple[float, float] = (4, 4)) -> list[Text]:
    """Text labels at data points (x, y, text, style), `offset` points away, each moved up or
    down in steps of its own height until it lies inside the axes and meets no other text of
    the figure: labels never overlap. The layout is settled first and the labels stay out of
    it, so drawing again moves nothing. A label with no room anywhere is left out."""
    fig = ax.figure
    r = renderer(fig)
    taken = [t.get_window_extent(r).padded(PAD_PX) for t in texts(fig)]
    placed = []
    ox, oy = offset
    for x, y, text, style in labels:
        t = ax.annotate(text, (x, y), xytext=(ox, oy), textcoords="offset points",
                        annotation_clip=False, **style)
        t.set_in_layout(False)
        step = t.get_window_extent(r).height + PAD_PX
        box = None
        for k in range(0, 160):  # left of the point first, then right-aligned; nearest first
            ha, dx = ("left", ox) if k % 2 == 0 else ("right", -ox)
            j = k // 2
            dy = (j + 1) // 2 * step * (1 if j % 2 else -1)
            t.set_horizontalalignment(ha)
            t.set_position((dx, oy + dy * 72.0 / fig.dpi))
            box = t.get_window_extent(r).padded(PAD_PX)
            inside = ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1 and \
                ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1
            if inside and not any(box.overlaps(o) for o in taken):
                break
        else:  # no room left: the label is dropped (its marker stays), never overlapped
            t.remove()
            continue
        taken.append(box)
        placed.append(t)
    return placed


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def svg_text(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # inline in HTML: no XML declaration or doctype


def save_png(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    Path(path).write_bytes(png_bytes(fig, dpi))


def html_page(title: str, parts: list[str], data: Any, data_id: str = "data") -> str:
    """A self-contained page: the parts (inline SVG figures, <pre> text, tables) and the data
    the figures were drawn from as JSON in <script type="application/json" id=data_id>."""
    payload = json.dumps(data, indent=1, sort_keys=True).replace("</", "<\\/")
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) +
            f"\n<script type=\"application/json\" id=\"{html.escape(data_id)}\">\n{payload}\n"
            "</script>\n</body>\n</html>\n")


def table(header: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>\n"
                   for row in rows)
    return f"<table class=\"{html.escape(cls)}\"><thead><tr>{head}</tr></thead>\n" \
           f"<tbody>\n{body}</tbody></table>"


STYLE = """body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1d2330; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin-top: 22px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { padding: 2px 10px; border-bottom: 1px solid #dde1e8; text-align: left; }
pre { background: #f4f6f9; padding: 10px; overflow-x: auto; }
.side-by-side { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.side-by-side > div { flex: 1 1 560px; min-width: 0; }
.side-by-side svg, figure svg { width: 100%; height: auto; }
figure { margin: 0; }
"""

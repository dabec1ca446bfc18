"""Small charts drawn on the server as SVG (the pages' CSP allows no inline script or style): bars
whose each bar may link to the records behind it, and a line of shares between 0 and 1."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T = 640, 200, 36, 28, 12
INK, GRID, BAR, LINE = "#26323f", "#d5dbe3", "#3f6fa8", "#2e7d4f"


def _frame(title: str, body: list[str], ident: str) -> Markup:
    # every text that comes from outside (titles, labels, links) went through escape() above
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(ident)}" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" aria-labelledby="{escape(ident)}-title">'
        f'<title id="{escape(ident)}-title">{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _axis(top: float, fmt: Callable[[float], str]) -> list[str]:
    plot_h = HEIGHT - PAD_B - PAD_T
    out = []
    for i in range(5):
        y = PAD_T + plot_h * i / 4
        out.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{WIDTH - 4}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>')
        out.append(
            f'<text x="{PAD_L - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="{INK}">'
            f"{escape(fmt(top * (4 - i) / 4))}</text>"
        )
    return out


def _labels(labels: Sequence[str], step: float) -> list[str]:
    every = max(1, len(labels) // 12)
    return [
        f'<text x="{PAD_L + step * (i + 0.5):.1f}" y="{HEIGHT - 10}" font-size="10" text-anchor="middle" '
        f'fill="{INK}">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def bar_chart(
    labels: Sequence[str], values: Sequence[int], *, title: str, ident: str, href: Callable[[str], str] | None = None
) -> Markup:
    """One bar per label; with ``href`` each bar links to its drill-down."""
    top = max([*values, 1])
    top = top if top <= 4 else ((top + 3) // 4) * 4
    plot_h = HEIGHT - PAD_B - PAD_T
    step = (WIDTH - PAD_L - 4) / max(1, len(labels))
    body = _axis(top, lambda v: f"{v:.0f}")
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x, y = PAD_L + step * i + step * 0.15, PAD_T + plot_h - h
        bar = (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="{BAR}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        if href is not None and value:
            bar = f'<a href="{escape(href(label))}">{bar}</a>'
        body.append(bar)
    return _frame(title, body + _labels(labels, step), ident)


def line_chart(labels: Sequence[str], values: Sequence[float | None], *, title: str, ident: str) -> Markup:
    """Shares (0..1) over the labels, as a line with a dot per known value and breaks where unknown."""
    plot_h = HEIGHT - PAD_B - PAD_T
    step = (WIDTH - PAD_L - 4) / max(1, len(labels))
    body = _axis(1.0, lambda v: f"{v * 100:.0f}%")
    points: list[list[tuple[float, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            points.append([])
            continue
        points[-1].append((PAD_L + step * (i + 0.5), PAD_T + plot_h * (1 - value)))
        body.append(
            f'<circle cx="{points[-1][-1][0]:.1f}" cy="{points[-1][-1][1]:.1f}" r="3" fill="{LINE}">'
            f"<title>{escape(labels[i])}: {value * 100:.1f}%</title></circle>"
        )
    for run in points:
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            body.insert(10, f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    return _frame(title, body + _labels(labels, step), ident)

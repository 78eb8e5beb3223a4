"""Card HTML pointed at our own plotly.js: the inline bundle and CDN scripts become one
`<script src>`, whatever `include_plotlyjs` the card chose."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from tilegraph.executor.plotly_asset import asset_path, bundle_version, point_plotly_at

SRC = "http://bi.example:8000" + asset_path()
TAG = f'<script charset="utf-8" src="{SRC}"></script>'


def _figure() -> go.Figure:
    return go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))


@pytest.mark.parametrize("mode", [True, "cdn", False, "directory"])
def test_every_plotly_mode_loads_one_script_from_our_server(mode: object) -> None:
    html = _figure().to_html(include_plotlyjs=mode)
    out = point_plotly_at(html, SRC)
    assert out.count(TAG) == 1
    assert "plotly.js v" not in out  # no inline bundle left
    assert "cdn.plot.ly" not in out
    assert len(out) < 20_000
    assert out.startswith("<html>") or out.startswith("<!doctype html>") or out.startswith("<")
    assert out.index(TAG) < out.index("Plotly.newPlot")


def test_a_fragment_with_a_cdn_script_keeps_the_rest_as_written() -> None:
    html = _figure().to_html(include_plotlyjs="cdn", full_html=False)
    start = html.index('<script charset="utf-8" src="https://cdn.plot.ly/')
    cdn = html[start : html.index("</script>", start) + len("</script>")]
    assert point_plotly_at(html, SRC) == html.replace(cdn, TAG)


def test_a_whole_document_without_plotly_gets_it_after_its_head() -> None:
    html = _figure().to_html(include_plotlyjs=False)
    out = point_plotly_at(html, SRC)
    assert out.startswith(html[: html.index("<head>") + len("<head>")] + TAG)


def test_html_that_does_not_draw_with_plotly_is_untouched_and_the_rewrite_is_idempotent() -> None:
    plain = "<p>Total: 3</p><script>console.log('x')</script>"
    assert point_plotly_at(plain, SRC) == plain
    once = point_plotly_at(_figure().to_html(), SRC)
    assert point_plotly_at(once, SRC) == once


def test_other_hosts_and_versions_of_plotly_are_replaced_too() -> None:
    html = (
        '<script src="https://cdn.jsdelivr.net/npm/plotly.js-dist@2.35.2/plotly.js"></script>'
        '<script src="//unpkg.com/plotly.js@1.58.5/dist/plotly.min.js?x=1"></script>'
        "<div id=g></div><script>Plotly.newPlot('g', [])</script>"
    )
    out = point_plotly_at(html, SRC)
    assert out == TAG + "<div id=g></div><script>Plotly.newPlot('g', [])</script>"


def test_the_asset_is_named_after_the_bundled_plotly_js_version() -> None:
    assert bundle_version().count(".") == 2
    assert asset_path() == f"/assets/plotly-{bundle_version()}.min.js"

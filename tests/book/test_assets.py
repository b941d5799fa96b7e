"""Each page loads each script once, and plotly.js / the widget manager only where it uses them (issue 25)."""
from sphinx.builders.html._assets import _JavaScript

from helpers.book import assets


def test_duplicate_scripts_and_unused_heavy_scripts_are_left_out():
    thebe = 'const THEBE_JS_URL = "https://unpkg.com/thebe"'
    scripts = [_JavaScript("_static/doctools.js"), _JavaScript(None, body=thebe), _JavaScript(None, body=thebe),
               _JavaScript("_static/plotly.min.js"), _JavaScript("_static/require.js"),
               _JavaScript("_static/widgets/embed-amd.js")]
    plain = assets.page_scripts(scripts, "<p>a glossary</p>")
    assert [str(s.filename) for s in plain] == ["_static/doctools.js", "None"]
    figure = assets.page_scripts(scripts, '<div class="plotly-graph-div"></div>')
    assert [str(s.filename) for s in figure] == ["_static/doctools.js", "None", "_static/plotly.min.js"]
    state = _JavaScript(None, type="application/vnd.jupyter.widget-state+json", body="{}")
    widgets = assets.page_scripts(scripts + [state], "<p>a widget</p>")
    assert "_static/widgets/embed-amd.js" in [str(s.filename) for s in widgets]
    assert sum(thebe in str(s.attributes.get("body", "")) for s in widgets) == 1

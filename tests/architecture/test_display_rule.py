"""One display rule for markdown emphasis: the web page hides the markers the library strips.

``service/qa/messages.py`` defines ``EMPHASIS_PATTERN`` (``display_text`` removes those markers
from answer sentences); ``service/api/static/app.js`` hides the same markers when it shows a
source (``const EMPHASIS = /.../g;``). The two must be the same pattern.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from service.qa import messages
from service.qa.messages import EMPHASIS_PATTERN, display_text
from tests.support.helpers import REPO_ROOT

APP_JS = REPO_ROOT / "service" / "api" / "static" / "app.js"
#: ``const EMPHASIS = /<pattern>/<flags>;`` on one line.
DECLARATION = re.compile(r"^\s*const\s+EMPHASIS\s*=\s*/(?P<pattern>.+)/(?P<flags>[dgimsuvy]*)\s*;\s*$", re.MULTILINE)
SAMPLES = [
    "**Tokutei Ginou** workers are selected by the **Ministry**.",
    "Peserta __magang__ wajib *lulus* ujian ***bahasa*** Jepang.",
    "a * b = c, snake_case_name and 2 ** 3 stay as they are",
    "__init__ and **bold**, then * spaced * stars",
    "***",
    "",
]


def js_regex(source: str) -> tuple[str, str]:
    """The pattern text and flags of the one ``EMPHASIS`` regex literal in ``source``."""
    found = DECLARATION.findall(source)
    assert len(found) == 1, f"expected one `const EMPHASIS = /.../g;` declaration, found {len(found)}"
    pattern, flags = found[0]
    return pattern.replace("\\/", "/"), flags  # a JS literal escapes "/", Python needs no escape


def test_the_extractor_reads_a_regex_literal() -> None:
    """So that the comparison below cannot pass vacuously."""
    assert js_regex("  const HEADING = /x/gm;\n  const EMPHASIS = /(a\\/b)|c/g;\n") == ("(a/b)|c", "g")
    with pytest.raises(AssertionError):
        js_regex("const EMPHASIS_X = /a/g;")


def test_the_page_hides_what_the_library_strips() -> None:
    source = APP_JS.read_text(encoding="utf-8")
    pattern, flags = js_regex(source)
    assert pattern == EMPHASIS_PATTERN
    assert flags == "g"  # global for matchAll; no flag that would change what the pattern means
    assert "matchAll(EMPHASIS)" in source  # the page does use it
    assert messages._EMPHASIS.pattern == EMPHASIS_PATTERN  # and so does display_text
    assert display_text("**Tokutei Ginou** workers") == "Tokutei Ginou workers"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_and_python_match_the_same_spans() -> None:
    """The same pattern text could still mean different things in two engines: compare the matches."""
    pattern, flags = js_regex(APP_JS.read_text(encoding="utf-8"))
    script = (
        f"const EMPHASIS = new RegExp({json.dumps(pattern)}, {json.dumps(flags)});"
        f"const samples = {json.dumps(SAMPLES)};"
        "console.log(JSON.stringify(samples.map((t) => [...t.matchAll(EMPHASIS)].map((m) => [m.index, m.index + m[0].length]))));"
    )
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30, check=True)
    in_js = json.loads(result.stdout)
    in_python = [[list(m.span()) for m in re.finditer(EMPHASIS_PATTERN, text)] for text in SAMPLES]
    assert in_js == in_python
    assert any(in_python), "the samples should contain emphasis markers"

"""Render an HTML report in headless Chromium (Debian's `chromium` package) and measure it:
the document's width in a window of a given width, which elements stick out, and whether
every image loaded. Used by the report tests; `.ci/install-browser.sh` installs Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

CHECK_ID = "lottery-mia-browser-check"
PROBE = """<script>
window.addEventListener('load', function () {
  var width = window.innerWidth;
  var images = Array.from(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var wide = Array.from(document.querySelectorAll('body *')).filter(function (e) {
    return e.getBoundingClientRect().right > width + 0.5;
  }).map(function (e) {
    var h = e.closest('table') || e;
    var before = h.previousElementSibling;
    return e.tagName + ' after "' + (before ? before.textContent.trim().slice(0, 60) : '') + '"';
  });
  var summary = document.getElementById('summary');
  var primary = document.querySelector('#summary #primary table');
  var claim = document.getElementById('claim');
  var out = document.createElement('pre');
  out.id = '%s';
  out.textContent = JSON.stringify({
    innerWidth: width, scrollWidth: document.documentElement.scrollWidth,
    images: images.length, broken: broken.length,
    summaryTop: summary ? summary.getBoundingClientRect().top : null,
    primaryTop: primary ? primary.getBoundingClientRect().top : null,
    primaryBottom: primary ? primary.getBoundingClientRect().bottom : null,
    claimBottom: claim ? claim.getBoundingClientRect().bottom : null,
    wide: Array.from(new Set(wide)).slice(0, 20)});
  document.body.appendChild(out);
});
</script>""" % CHECK_ID


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: int = 180) -> subprocess.CompletedProcess:
    exe = chromium()
    if exe is None:
        raise RuntimeError("Chromium is not installed (run .ci/install-browser.sh)")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", *args], capture_output=True, text=True,
                          timeout=timeout)


def measure(report: Path, workdir: Path, width: int = 1400, height: int = 900) -> dict:
    """Load ``report`` (a copy with a probe script) in a ``width`` x ``height`` window and
    return what the probe saw: innerWidth, scrollWidth, images, broken, wide (elements
    reaching past the window's right edge)."""
    html = Path(report).read_text()
    probe = Path(workdir) / "probed.html"
    probe.write_text(html.replace("</body>", PROBE + "\n</body>"))
    proc = _run([f"--window-size={width},{height}", "--virtual-time-budget=10000",
                 "--dump-dom", probe.resolve().as_uri()])
    m = re.search(rf'<pre id="{CHECK_ID}">(.*?)</pre>', proc.stdout, re.S)
    if not m:
        raise RuntimeError(f"Chromium did not run the probe (rc {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    text = m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">") \
        .replace("&amp;", "&")
    return json.loads(text)


def screenshot(report: Path, out: Path, width: int = 1400, height: int = 9000) -> Path:
    """A PNG of the report as a reader sees it in a ``width``-px window."""
    _run([f"--window-size={width},{height}", f"--screenshot={Path(out).resolve()}",
          Path(report).resolve().as_uri()])
    return Path(out)

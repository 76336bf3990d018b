"""The live page served by `edgeseg run --serve`: one self-contained HTML file (no external assets).

The stream is scaled to the window (CSS object-fit: contain); the model name and the legend are
HTML, escaped here once, so class names can never inject markup; the stats come from `/stats`,
polled with fetch and written with textContent; a banner says when the stream has ended.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

_STYLE = """
*{box-sizing:border-box}
html,body{margin:0;height:100%;background:#111;color:#ddd;font:14px/1.35 system-ui,sans-serif}
body{display:flex;flex-direction:column}
header{display:flex;flex-wrap:wrap;gap:4px 18px;align-items:center;padding:6px 10px;
background:#1b1b1b;border-bottom:1px solid #333}
header h1{font-size:15px;margin:0;font-weight:600}
#state{padding:1px 8px;border-radius:9px;background:#264d26;color:#cfc}
body.ended #state{background:#5a1e1e;color:#fcc}
#stats{font-variant-numeric:tabular-nums;color:#aaa}
#legend{display:flex;flex-wrap:wrap;gap:2px 12px;margin:0;padding:0;list-style:none}
#legend li{display:flex;align-items:center;gap:5px}
#legend i{display:inline-block;width:14px;height:14px;border:1px solid #555;border-radius:2px}
main{flex:1;min-height:0;display:flex;position:relative}
main img{flex:1;width:100%;height:100%;min-width:0;object-fit:contain}
#banner{display:none;position:absolute;left:50%;top:50%;transform:translate(-50%,-50%);
padding:12px 22px;background:rgba(0,0,0,.78);border:1px solid #a33;border-radius:6px;
font-size:18px;color:#fcc}
body.ended #banner{display:block}
"""

POLL_S = 1.0  # how often the page polls /stats (the server lingers at close for the next poll)
# Polls /stats every POLL_S; any failure (server gone) or "ended": true ends the page's stream.
_SCRIPT = """
const $ = (id) => document.getElementById(id);
let ended = false;
function end(why) {
  if (ended) return;
  ended = true;
  document.body.classList.add("ended");
  $("state").textContent = "stream ended";
  $("banner").textContent = "Stream ended: " + why;
}
function uptime(sec) {
  const t = Math.round(sec), h = Math.floor(t / 3600), m = Math.floor(t / 60) % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? h + ":" + pad(m) + ":" + pad(t % 60) : m + ":" + pad(t % 60);
}
function show(s) {
  const st = s.stages || {};
  const parts = [s.fps.toFixed(1) + " FPS", s.frames + " frames", s.dropped + " dropped"];
  for (const [key, label] of [["preprocess", "pre"], ["invoke", "invoke"],
                              ["postprocess", "post"], ["draw", "draw"]]) {
    if (typeof st[key] === "number") parts.push(label + " " + st[key].toFixed(1) + " ms");
  }
  parts.push("up " + uptime(s.uptime_s));
  $("stats").textContent = parts.join(" \u00b7 ");
  $("stats").dataset.frames = String(s.frames);
}
async function poll() {
  try {
    const r = await fetch("/stats", {cache: "no-store"});
    const s = await r.json();
    show(s);
    if (s.ended) { end(s.reason || "the source finished"); return; }
  } catch (e) {
    end("the server stopped");
    return;
  }
  setTimeout(poll, __POLL_MS__);
}
async function closed() {  // the picture stopped: ask why before the server goes
  if (ended) return;
  try {
    const s = await (await fetch("/stats", {cache: "no-store"})).json();
    end(s.ended ? (s.reason || "the source finished") : "the image stream closed");
  } catch (e) {
    end("the image stream closed");
  }
}
$("stream").addEventListener("error", closed);
poll();
""".replace("__POLL_MS__", str(round(POLL_S * 1000)))


def _rgb(color: Sequence[int]) -> str:
    r, g, b = (max(0, min(255, int(c))) for c in color[:3])
    return f"rgb({r},{g},{b})"


def render_page(
    model: str,
    class_names: Sequence[str],
    palette: Sequence[Sequence[int]],
) -> bytes:
    """The whole page as UTF-8 bytes; every user-supplied string is HTML-escaped."""
    title = html.escape(model or "model")
    items = "".join(
        f'<li><i style="background:{_rgb(palette[i]) if i < len(palette) else "#888"}"></i>'
        f"<span>{html.escape(name)}</span></li>"
        for i, name in enumerate(class_names)
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>edgeseg \u00b7 {title}</title><style>{_STYLE}</style></head>\n"
        "<body>\n<header>"
        f'<h1>edgeseg \u00b7 <span id="model">{title}</span></h1>'
        '<span id="state">live</span><span id="stats">waiting for stats\u2026</span>'
        f'<ul id="legend" aria-label="classes">{items}</ul>'
        "</header>\n"
        '<main><img id="stream" src="/stream.mjpg" alt="live segmentation stream">'
        '<div id="banner" role="status"></div></main>\n'
        f"<script>{_SCRIPT}</script>\n</body></html>\n"
    ).encode()

"""The report's inline style and script, and the Content-Security-Policy that allows only them.

The policy names the exact hashes of these two blocks, so nothing else on the
page can run or load, even text from a hostile bookmark that escaping missed.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSP", "SCRIPT", "STYLE"]

STYLE = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#5a6372;--line:#d8dee4;
--card:#f6f8fa;--bar:#3b6fd8;--ok:#2f9e44;--bad:#d6336c;--warn:#e8890c;--code:#eef1f4}
@media (prefers-color-scheme:dark){:root{--bg:#0f1216;--fg:#e6e9ee;--muted:#9aa4b2;
--line:#2c333c;--card:#171b21;--bar:#6d9bff;--ok:#51cf66;--bad:#ff6b9a;--warn:#ffb347;
--code:#1f252d}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,sans-serif}
main{max-width:1200px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.2em 0}h2{font-size:1.2rem;margin:1.6em 0 .5em;
border-bottom:1px solid var(--line);padding-bottom:.2em}h3{font-size:1rem;margin:1.2em 0 .4em}
nav a{margin-right:.8em;white-space:nowrap}a{color:var(--bar)}
.muted,.empty{color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:8px}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.card b{display:block;font-size:1.4rem}.card span{color:var(--muted);font-size:.85rem}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.3em 0}
caption{text-align:left;color:var(--muted);font-size:.8rem}
th,td{border-bottom:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}.num{text-align:right;font-variant-numeric:tabular-nums}
code{background:var(--code);padding:1px 4px;border-radius:3px;font-size:.85rem;
overflow-wrap:anywhere}
figure{margin:0}.pair{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px;
align-items:start;margin:.5em 0 1em}
@media (max-width:800px){.pair{grid-template-columns:minmax(0,1fr)}}
svg.chart{width:100%;max-width:560px;height:auto;display:block}
svg .lbl,svg .val{fill:var(--fg);font-size:12px}svg .val{fill:var(--muted)}
svg .axis{stroke:var(--line)}
.s-bar{fill:var(--bar)}.s-ok{fill:var(--ok)}.s-bad{fill:var(--bad)}.s-warn{fill:var(--warn)}
.legend{margin:.2em 0;font-size:.85rem}.key{margin-right:1em}
.key::before{content:"";display:inline-block;width:.8em;height:.8em;margin-right:.3em;
vertical-align:-.05em;background:var(--bar)}
.key.s-ok::before{background:var(--ok)}.key.s-bad::before{background:var(--bad)}
.dead{color:var(--bad);font-weight:600}
.filters{display:flex;flex-wrap:wrap;gap:8px;margin:.5em 0}
.filters label{font-size:.9rem}.filters select,.filters input{font:inherit;margin-left:.3em}
tr.hide,.filters[hidden]{display:none}
@media print{:root{--bg:#fff;--fg:#000;--card:#fff;--code:#f4f4f4}
.filters,nav{display:none}main{max-width:none;padding:0}h2{break-after:avoid}
figure,tr{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""

SCRIPT = """
(function(){
var t=document.getElementById('failed-bookmarks');if(!t)return;
var box=document.getElementById('failure-filters'),rows=t.tBodies[0].rows;
var st=document.getElementById('f-stage'),re=document.getElementById('f-reason'),
q=document.getElementById('f-text'),n=document.getElementById('f-count');
function fill(sel,attr){var seen={};for(var i=0;i<rows.length;i++){
var v=rows[i].getAttribute(attr);if(!seen[v]){seen[v]=1;var o=document.createElement('option');
o.value=v;o.textContent=v;sel.appendChild(o);}}}
fill(st,'data-stage');fill(re,'data-reason');
function apply(){var s=st.value,r=re.value,text=q.value.toLowerCase(),shown=0;
for(var i=0;i<rows.length;i++){var row=rows[i];
var ok=(!s||row.getAttribute('data-stage')===s)&&(!r||row.getAttribute('data-reason')===r)&&
(!text||row.textContent.toLowerCase().indexOf(text)>=0);
row.classList.toggle('hide',!ok);if(ok)shown++;}
n.textContent=shown+' of '+rows.length+' shown';}
st.addEventListener('change',apply);re.addEventListener('change',apply);
q.addEventListener('input',apply);box.hidden=false;apply();
})();
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = ("default-src 'none'; img-src data:; base-uri 'none'; form-action 'none'; "
       f"style-src {_sha256(STYLE)}; script-src {_sha256(SCRIPT)}")

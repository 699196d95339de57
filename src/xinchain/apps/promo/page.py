"""The public ranking page of a promotion, with a "check my rank" form, for a phone.

The table is rendered on the server, a page of `ranking_page_rows` rows at a time with links to
the first, previous, next and last pages and a page number to jump to: a million orders are
five thousand pages, each read from one block of the ranking. The form asks the node's REST API
for one order's rank, links the page that shows it and, once the ranking is committed, the
receipt that proves it; an order that arrived too late to rank says so.
"""

from __future__ import annotations

import datetime
import html
import json
from typing import Any

from xinchain.web.lang import translate

# Rows a page shows.
ranking_page_rows = 200

TEXT: dict[str, tuple[str, str]] = {
    "final": ("Final ranking, committed on chain", "最终排名（已上链存证）"),
    "provisional": ("Provisional ranking: the promotion is open", "临时排名：活动进行中"),
    "rank": ("Rank", "名次"),
    "buyer": ("Buyer", "买家"),
    "paid": ("Paid at", "付款时间"),
    "order": ("Order", "订单号"),
    "winner": ("winner", "获奖"),
    "check": ("Check my rank", "查询我的名次"),
    "order_no": ("Order number", "订单号"),
    "submit": ("Check", "查询"),
    "closing": (
        "The window has ended; the ranking is being committed ({ranked} of {of} ranked)",
        "活动已结束，排名正在上链（已排 {ranked} / {of}）",
    ),
    "late": (
        "{n} orders arrived too late to rank (anchored more than {minutes} minutes after payment)",
        "{n} 笔订单上链过晚，未参与排名（付款后超过 {minutes} 分钟才上链）",
    ),
    "pages": (
        "Page {page} of {pages} · {orders} orders",
        "第 {page} / {pages} 页 · 共 {orders} 单",
    ),
    "first": ("First", "首页"),
    "previous": ("Previous", "上一页"),
    "next": ("Next", "下一页"),
    "last": ("Last", "末页"),
    "go": ("Go to page", "跳至"),
    "rule": (
        "Ranked by payment time, then by order number (smaller first). The first {n} win: {gift}.",
        "按付款时间排序，时间相同按订单号从小到大。前{n}名获赠：{gift}。",
    ),
}


def _t(key: str, lang: int) -> str:
    return translate(TEXT, key, lang)


def _time(ms: int, lang: int) -> str:
    """Beijing time on the Chinese page (where the shoppers are), UTC on the English one."""
    zone = datetime.timezone(datetime.timedelta(hours=8)) if lang else datetime.UTC
    moment = datetime.datetime.fromtimestamp(ms / 1000, zone)
    return moment.strftime("%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def _pager(page: int, pages: int, orders: int, lang: int) -> str:
    e = html.escape
    code = ("en", "zh")[lang]

    def link(key: str, target: int, disabled: bool) -> str:
        if disabled:
            return f"<span class='off'>{e(_t(key, lang))}</span>"
        return f"<a rel='{key}' href='?page={target}&amp;lang={code}'>{e(_t(key, lang))}</a>"

    where = _t("pages", lang).format(page=page, pages=pages, orders=orders)
    return (
        f"<nav class='pager'><span id='where'>{e(where)}</span> "
        f"{link('first', 1, page == 1)} {link('previous', page - 1, page == 1)} "
        f"{link('next', page + 1, page == pages)} {link('last', pages, page == pages)}"
        f"<form class='go'><input type='hidden' name='lang' value='{code}'><label>"
        f"{e(_t('go', lang))} <input name='page' type='number' min='1' max='{pages}' "
        f"value='{page}' inputmode='numeric'></label></form></nav>"
    )


def render_ranking(
    record: dict[str, Any],
    rows: list[dict[str, Any]],
    lang: int,
    page: int = 1,
    pages: int = 1,
    orders: int = 0,
) -> str:
    e = html.escape
    status = _t("final" if record["closed"] else "provisional", lang)
    closing = record.get("rules", 1) >= 2 and not record["closed"] and record["ranked"] > 0
    if closing and record["ranked"] < record["orders"]:
        status += " · " + _t("closing", lang).format(ranked=record["ranked"], of=record["orders"])
    late = ""
    if record.get("late"):
        minutes = record["skew_ms"] // 60_000
        words = _t("late", lang).format(n=record["late"], minutes=minutes)
        late = f"<p id='late' class='muted'>{e(words)}</p>"
    rule = _t("rule", lang).format(n=record["winners"], gift=record["gift"])
    zone = ("UTC", "北京时间")[lang]
    head = "".join(
        f"<th>{e(_t(k, lang))}{f' ({zone})' if k == 'paid' else ''}</th>"
        for k in ("rank", "buyer", "paid", "order")
    )
    mark = f" <span class='gift'>{e(_t('winner', lang))}</span>"
    body = "".join(
        f"<tr class='{'win' if row['winner'] else ''}'><td>{row['rank']}"
        f"{mark if row['winner'] else ''}</td><td>{e(row['buyer'])}</td>"
        f"<td>{e(_time(row['paid_ms'], lang))}</td><td>{e(row['order_no'])}</td></tr>"
        for row in rows
    )
    labels = {
        "you": ("You are No. {rank} of {of}", "您是第{rank}名（共{of}单）")[lang],
        "won": ("You win the gift", "您获得赠品")[lang],
        "lost": ("Not among the winners", "未进入获奖名次")[lang],
        "receipt": ("Download the receipt proving it", "下载名次存证回执")[lang],
        "none": ("No such order in this promotion", "本活动中没有该订单")[lang],
        "late": ("This order arrived too late to rank", "该订单上链过晚，未参与排名")[lang],
        "show": ("Show it in the ranking", "在排名中查看")[lang],
        "rows": ranking_page_rows,
    }
    pager = _pager(page, pages, orders, lang) if pages > 1 else ""
    script = _SCRIPT.replace("__PROMO__", json.dumps(record["promo"])).replace(
        "__LABELS__", json.dumps(labels, ensure_ascii=False)
    )
    return (
        f"<!doctype html><html lang='{'zh-CN' if lang else 'en'}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(record['title'])}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{e(record['title'])}</h1><p class='muted'>{e(rule)}</p>"
        f"<p class='status'>{e(status)}</p>{late}"
        f"<form id='check'><label>{e(_t('order_no', lang))} <input id='order' "
        f"autocomplete='off' required maxlength='64'></label> "
        f"<button>{e(_t('submit', lang))}</button></form><div id='result'></div>"
        f"{pager}"
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        f"</table></div>{pager if len(rows) > 20 else ''}"
        f"</main><script>{script}</script></body></html>"
    )


_SCRIPT = """
const promo = __PROMO__, labels = __LABELS__;
document.getElementById("check").addEventListener("submit", async (event) => {
  event.preventDefault();
  const order = document.getElementById("order").value.trim();
  const out = document.getElementById("result");
  const base = `/v1/promos/${encodeURIComponent(promo)}/rank/${encodeURIComponent(order)}`;
  const response = await fetch(base);
  const p = document.createElement("p");
  if (!response.ok) {
    let reason = "";
    try { reason = (await response.json()).error.reason || ""; } catch (error) { reason = ""; }
    p.className = "bad";
    p.textContent = reason.includes("arrived too late to rank") ? labels.late : labels.none;
    out.replaceChildren(p); return;
  }
  const rank = await response.json();
  p.id = "my-rank"; p.className = rank.winner ? "ok" : "";
  p.textContent = labels.you.replace("{rank}", rank.rank).replace("{of}", rank.of) +
    " · " + (rank.winner ? labels.won : labels.lost);
  const parts = [p];
  const show = document.createElement("a");
  show.id = "rank-page"; show.textContent = labels.show;
  const params = new URLSearchParams(location.search);
  params.set("page", String(Math.floor((rank.rank - 1) / labels.rows) + 1));
  show.href = "?" + params.toString(); parts.push(show, document.createTextNode(" "));
  if (rank.final) {
    const a = document.createElement("a");
    a.id = "rank-receipt"; a.href = base + "/receipt"; a.download = `${order}.rank-receipt.json`;
    a.textContent = labels.receipt; parts.push(a);
  }
  out.replaceChildren(...parts);
});
"""

_CSS = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"PingFang SC",
"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;color:#1d2433;background:#f6f7f9}
main{max-width:720px;margin:0 auto;padding:16px}h1{font-size:22px;margin:8px 0}
.muted{color:#667085}.status{font-weight:600}form{margin:12px 0}input{font:inherit;
padding:6px;max-width:60vw}button{font:inherit;padding:6px 12px}.scroll{overflow-x:auto}
table{width:100%;border-collapse:collapse;font-size:14px;background:#fff}th,td{text-align:left;
padding:6px 4px;border-bottom:1px solid #e4e7ec}tr.win td{background:#ecfdf3}
th,td{white-space:nowrap}
.gift{font-size:12px;color:#067647;border:1px solid #067647;border-radius:6px;padding:0 4px}
#rank-receipt{display:inline-block;margin:4px 0 12px}
.pager{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0;font-size:14px}
.pager a,.pager .off{padding:4px 8px;border:1px solid #d0d5dd;border-radius:6px;background:#fff}
.pager .off{color:#98a2b3}.go input{width:5.5em}#rank-page{margin-right:12px}
.ok{color:#067647;font-weight:600}.bad{color:#b42318;font-weight:600}#result{overflow-wrap:anywhere}
"""

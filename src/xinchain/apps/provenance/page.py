"""The public scan page of an item, in Chinese or English, for a phone.

Rendered on the server as one small HTML document with inline CSS and no script: it must load
fast on a poor mobile connection and show the same thing whatever the browser. Every value
that comes from the chain is escaped.
"""

from __future__ import annotations

import datetime
import html

from xinchain.apps.provenance.epcis import CUSTOMS_CLEARANCE_STEP, DELIVERING_STEP
from xinchain.apps.provenance.view import ItemView, Step
from xinchain.web.lang import translate

STEP_LABELS: dict[str, tuple[str, str]] = {
    "commissioning": ("Produced and registered", "生产赋码"),
    "packing": ("Packed", "装箱"),
    "unpacking": ("Unpacked", "拆箱"),
    "shipping": ("Shipped", "发运"),
    "departing": ("Departed", "离港"),
    "arriving": ("Arrived", "到港"),
    "transporting": ("In transport", "运输中"),
    "loading": ("Loaded", "装载"),
    "unloading": ("Unloaded", "卸载"),
    "receiving": ("Received", "入库"),
    "accepting": ("Accepted", "验收"),
    "inspecting": ("Inspected", "查验"),
    "holding": ("Held for review", "暂扣待查"),
    CUSTOMS_CLEARANCE_STEP: ("Customs cleared", "海关清关"),
    "storing": ("Stored in bonded warehouse", "保税仓储存"),
    "stocking": ("Stocked", "上架"),
    "picking": ("Picked", "拣货"),
    "staging_outbound": ("Ready to ship", "待出库"),
    DELIVERING_STEP: ("Delivered to the shopper", "已送达消费者"),
    "retail_selling": ("Sold", "售出"),
}

TEXT: dict[str, tuple[str, str]] = {
    "title": ("Product journey", "商品溯源"),
    "product": ("Product", "商品"),
    "brand": ("Brand", "品牌"),
    "origin": ("Origin", "原产地"),
    "serial": ("Serial", "序列号"),
    "verified": ("Verified on chain", "链上已验证"),
    "receipt": ("Download receipt", "下载存证回执"),
    "by": ("By", "记录方"),
    "place": ("Place", "地点"),
    "time": ("Time", "时间"),
    "declaration": ("Customs declaration", "报关单号"),
    "via": ("Recorded for its case", "随箱记录"),
    "not_registered": (
        "Not registered: this code was never issued by the brand on the chain.",
        "未注册：该码从未由品牌方在链上登记。",
    ),
    "suspect": (
        "Warning: this code has been scanned unusually often or in many places. It may be a copy.",
        "警告：该码扫描次数或地点异常，可能是仿冒品。",
    ),
    "scans": ("Scans", "扫描次数"),
}


def _t(key: str, lang: int) -> str:
    return translate(TEXT, key, lang)


def step_label(biz_step: str, lang: int) -> str:
    label = STEP_LABELS.get(biz_step)
    return label[lang] if label else biz_step.rsplit(":", 1)[-1].replace("_", " ")


def place_label(uri: str) -> str:
    """An SGLN as its GLN (and extension); other URIs as they are."""
    if uri.startswith("urn:epc:id:sgln:"):
        parts = uri.removeprefix("urn:epc:id:sgln:").split(".")
        if len(parts) == 3:
            gln = parts[0] + parts[1]
            return f"GLN {gln}" + (f" / {parts[2]}" if parts[2] != "0" else "")
    return uri


def event_time(step: Step) -> str:
    offset_text = str(step.document.get("eventTimeZoneOffset", "+00:00"))
    sign = -1 if offset_text.startswith("-") else 1
    hours, _, minutes = offset_text[1:].partition(":")
    offset = datetime.timedelta(minutes=sign * (int(hours or 0) * 60 + int(minutes or 0)))
    moment = datetime.datetime.fromtimestamp(
        step.event["event_time_us"] / 1_000_000, datetime.timezone(offset)
    )
    return moment.strftime("%Y-%m-%d %H:%M ") + offset_text


def render(view: ItemView, lang: int) -> str:
    e = html.escape
    body: list[str] = [f"<h1>{e(_t('title', lang))}</h1>"]
    if not view.registered:
        body.append(f'<p class="bad" id="not-registered">{e(_t("not_registered", lang))}</p>')
        body.append(f"<p class='muted'>{e(view.gtin)} · {e(view.serial)}</p>")
        return _page(body, lang)
    if view.suspect:
        body.append(f'<p class="bad" id="suspect">{e(_t("suspect", lang))}</p>')
    product = view.product or {}
    body.append('<dl class="card">')
    for key, value in (
        ("product", product.get("name", "")),
        ("brand", product.get("brand_name", "")),
        ("origin", product.get("origin", "")),
        ("serial", f"{view.gtin} · {view.serial}"),
        ("scans", str(view.scans)),
    ):
        body.append(f"<dt>{e(_t(key, lang))}</dt><dd>{e(str(value))}</dd>")
    body.append("</dl><ol class='steps'>")
    for step in view.steps:
        body.append(_step(step, lang))
    body.append("</ol>")
    return _page(body, lang)


def _step(step: Step, lang: int) -> str:
    e = html.escape
    event = step.event
    rows = [
        (_t("by", lang), step.org_name),
        (_t("time", lang), event_time(step)),
    ]
    place = event["biz_location"] or event["read_point"]
    if place:
        rows.append((_t("place", lang), place_label(place)))
    if event["customs_declaration"]:
        number = event["customs_declaration"]
        rows.append((_t("declaration", lang), number.rsplit(":", 1)[-1]))
    details = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    via = f"<p class='muted'>{e(_t('via', lang))}: {e(step.via)}</p>" if step.via else ""
    receipt = f"/v1/provenance/events/{step.digest}/receipt"
    return (
        f"<li class='step' data-step='{e(event['biz_step'])}'>"
        f"<h2>{e(step_label(event['biz_step'], lang))}</h2><dl>{details}</dl>{via}"
        f"<p><span class='ok'>✓ {e(_t('verified', lang))}</span> · "
        f"<a class='receipt' href='{e(receipt)}' download='{e(step.digest[:16])}.receipt.json'>"
        f"{e(_t('receipt', lang))}</a></p></li>"
    )


def _page(body: list[str], lang: int) -> str:
    code = "zh-CN" if lang else "en"
    return (
        f"<!doctype html><html lang='{code}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(_t('title', lang))}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>"
    )


_CSS = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"PingFang SC",
"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;color:#1d2433;background:#f6f7f9}
main{max-width:640px;margin:0 auto;padding:16px}h1{font-size:22px;margin:8px 0 16px}
h2{font-size:17px;margin:0 0 6px}.card,.step{background:#fff;border:1px solid #e4e7ec;
border-radius:12px;padding:12px 14px;margin:0 0 12px}dl{display:grid;grid-template-columns:
max-content 1fr;gap:2px 12px;margin:0}dt{color:#667085}dd{margin:0;overflow-wrap:anywhere}
ol.steps{list-style:none;padding:0;margin:0}.ok{color:#067647;font-weight:600}.bad{color:#b42318;
font-weight:600;background:#fef3f2;border-radius:10px;padding:10px}.muted{color:#667085;
font-size:14px;overflow-wrap:anywhere}a{color:#175cd3}
"""

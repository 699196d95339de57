"""The public scan page of an item, in Chinese or English, for a phone.

Rendered on the server as one small HTML document with inline CSS and no script: it must load
fast on a poor mobile connection and show the same thing whatever the browser. Every value
that comes from the chain is escaped.
"""

from __future__ import annotations

import datetime
import html
import urllib.parse
from decimal import Decimal, InvalidOperation
from typing import Any

from xinchain.apps.provenance.epcis import CUSTOMS_CLEARANCE_STEP, DELIVERING_STEP
from xinchain.apps.provenance.keys import canonical
from xinchain.apps.provenance.view import ItemView, KeyView, Step
from xinchain.errors import XinchainError
from xinchain.web.lang import translate

# Every CBV 2.0 business step, and our own, as a shopper reads it (English, Chinese).
STEP_LABELS: dict[str, tuple[str, str]] = {
    "accepting": ("Accepted", "验收"),
    "arriving": ("Arrived", "到港"),
    "assembling": ("Assembled", "组装"),
    "collecting": ("Collected", "收集"),
    "commissioning": ("Produced and registered", "生产赋码"),
    "consigning": ("Consigned", "托运"),
    "creating_class_instance": ("Batch instance created", "批次实例创建"),
    "cycle_counting": ("Cycle counted", "循环盘点"),
    "decommissioning": ("Decommissioned", "注销"),
    "departing": ("Departed", "离港"),
    "destroying": ("Destroyed", "销毁"),
    "disassembling": ("Disassembled", "拆解"),
    "dispensing": ("Dispensed", "分发"),
    "encoding": ("Code written", "写码"),
    "entering_exiting": ("Entered or left a site", "进出场"),
    "holding": ("Held for review", "暂扣待查"),
    "inspecting": ("Inspected", "查验"),
    "installing": ("Installed", "安装"),
    "killing": ("Tag deactivated", "标签灭活"),
    "loading": ("Loaded", "装载"),
    "other": ("Other step", "其他环节"),
    "packing": ("Packed", "装箱"),
    "picking": ("Picked", "拣货"),
    "receiving": ("Received", "入库"),
    "removing": ("Removed", "拆除"),
    "repackaging": ("Repackaged", "重新包装"),
    "repairing": ("Repaired", "维修"),
    "replacing": ("Replaced", "更换"),
    "reserving": ("Reserved", "预留"),
    "retail_selling": ("Sold", "售出"),
    "sampling": ("Sampled for testing", "抽样检测"),
    "sensor_reporting": ("Sensor readings", "传感器读数"),
    "shipping": ("Shipped", "发运"),
    "staging_outbound": ("Ready to ship", "待出库"),
    "stock_taking": ("Stock taken", "盘点"),
    "stocking": ("Stocked", "上架"),
    "storing": ("Stored in bonded warehouse", "保税仓储存"),
    "transporting": ("In transport", "运输中"),
    "unloading": ("Unloaded", "卸载"),
    "unpacking": ("Unpacked", "拆箱"),
    "void_shipping": ("Shipment voided", "发运作废"),
    CUSTOMS_CLEARANCE_STEP: ("Customs cleared", "海关清关"),
    DELIVERING_STEP: ("Delivered to the shopper", "已送达消费者"),
    "": ("Recorded", "已记录"),  # an event with no bizStep
}

# Sensor measurement types (GS1 Web Vocabulary, `gs1:` prefix optional) as a reader says them.
MEASUREMENT_LABELS: dict[str, tuple[str, str]] = {
    "Temperature": ("Temperature", "温度"),
    "RelativeHumidity": ("Relative humidity", "相对湿度"),
    "AbsoluteHumidity": ("Absolute humidity", "绝对湿度"),
    "Humidity": ("Humidity", "湿度"),
    "Illuminance": ("Light", "光照"),
    "Speed": ("Speed", "速度"),
    "Mass": ("Mass", "质量"),
    "Length": ("Length", "长度"),
    "Angle": ("Angle", "角度"),
    "Pressure": ("Pressure", "压力"),
    "Acceleration": ("Shock", "冲击加速度"),
    "DoseEquivalentRate": ("Radiation dose rate", "辐射剂量率"),
    "AmountOfSubstancePerUnitVolume": ("Concentration", "浓度"),
}
# UN/CEFACT Recommendation 20 unit codes as symbols.
UNIT_SYMBOLS: dict[str, str] = {
    "CEL": "°C",
    "FAH": "°F",
    "KEL": "K",
    "P1": "%",
    "A93": "g/m³",
    "LUX": "lx",
    "KMH": "km/h",
    "MTS": "m/s",
    "KGM": "kg",
    "GRM": "g",
    "MTR": "m",
    "DD": "°",
    "KPA": "kPa",
    "MBR": "mbar",
    "C35": "mol/L",
    "P71": "mSv/h",
}
# Storage limits a reading is checked against: infant formula keeps below 25 °C and away from
# damp (relative humidity at most 65 %). (measurement type, unit) → (lowest, highest).
SENSOR_LIMITS: dict[tuple[str, str], tuple[Decimal | None, Decimal | None]] = {
    ("Temperature", "CEL"): (Decimal(-5), Decimal(25)),
    ("Temperature", "FAH"): (Decimal(23), Decimal(77)),
    ("Temperature", "KEL"): (Decimal("268.15"), Decimal("298.15")),
    ("RelativeHumidity", "P1"): (None, Decimal(65)),
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
    "retracted": (
        "Retracted: the recorder declared this event in error",
        "已撤销：记录方声明此事件有误",
    ),
    "corrected_by": ("Corrected by", "更正事件"),
    "readings": ("Readings", "读数"),
    "out_of_range": ("out of range", "超出范围"),
    "alarm": ("alarm", "告警"),
    "limit": ("limit", "限值"),
    "contents": ("Contents", "箱内物品"),
    "inside": ("Now inside", "当前所在包装"),
    "lot_title": ("Lot journey", "批次溯源"),
    "case_title": ("Case journey", "包装溯源"),
    "key_title": ("Journey", "溯源"),
    "lot": ("Lot", "批号"),
    "case": ("Case (SSCC)", "物流单元（SSCC）"),
    "nothing": ("Nothing is recorded on the chain for this code.", "链上没有该码的记录。"),
    "quantity": ("Quantity", "数量"),
}


def _t(key: str, lang: int) -> str:
    return translate(TEXT, key, lang)


def step_label(biz_step: str, lang: int) -> str:
    label = STEP_LABELS.get(biz_step)
    return label[lang] if label else biz_step.rsplit(":", 1)[-1].replace("_", " ")


def place_label(uri: str) -> str:
    """A location as a person reads it off a label: its 13-digit GLN, check digit included,
    and its extension; a URI that names no GLN as it is."""
    try:
        key = canonical(uri)
    except XinchainError:
        return uri
    if key.kind == "sgln":
        return f"GLN {key.key}" + (f" / {key.extension}" if key.extension else "")
    return uri


def key_label(uri: str) -> str:
    """A GS1 key as printed under its barcode: `(00) 106141412345678908`, `(01) … (21) …`."""
    try:
        key = canonical(uri)
    except XinchainError:
        return uri
    if key.kind == "sgtin":
        return f"(01) {key.key} (21) {key.serial}"
    if key.kind == "lgtin":
        return f"(01) {key.key} (10) {key.lot}"
    if key.is_gs1:
        return " ".join(f"({ai}) {value}" for ai, value in _pairs(key.path))
    return uri


def _pairs(path: str) -> list[tuple[str, str]]:
    segments = path.strip("/").split("/")
    pairs = range(0, len(segments) - 1, 2)
    return [(segments[i], urllib.parse.unquote(segments[i + 1])) for i in pairs]


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
        if not step.declares:  # shown on the step it retracts
            body.append(_step(step, lang))
    body.append("</ol>")
    return _page(body, lang)


def render_key(view: KeyView, lang: int) -> str:
    """The page of a lot, a case or pallet, or any other GS1 key: its journey and contents."""
    e = html.escape
    kind = view.key.kind
    title = {"lgtin": "lot_title", "sscc": "case_title"}.get(kind, "key_title")
    body: list[str] = [f"<h1>{e(_t(title, lang))}</h1>", '<dl class="card">']
    if kind == "lgtin":
        body.append(f"<dt>{e(_t('lot', lang))}</dt><dd id='key'>{e(view.key.lot)}</dd>")
        body.append(f"<dt>GTIN</dt><dd>{e(view.key.key)}</dd>")
    else:
        label = _t("case", lang) if kind == "sscc" else kind.upper()
        body.append(f"<dt>{e(label)}</dt><dd id='key'>{e(key_label(view.key.uri))}</dd>")
    if view.container:
        link = _link(view.container)
        body.append(f"<dt>{e(_t('inside', lang))}</dt><dd>{link}</dd>")
    body.append("</dl>")
    if view.contents:
        body.append(f"<h2>{e(_t('contents', lang))} ({len(view.contents)})</h2>")
        items = "".join(f"<li>{_link(uri)}</li>" for uri in view.contents)
        body.append(f"<ul class='card contents' id='contents'>{items}</ul>")
    if not view.steps and not view.contents:
        body.append(f'<p class="bad" id="nothing">{e(_t("nothing", lang))}</p>')
    body.append("<ol class='steps'>")
    body.extend(_step(step, lang) for step in view.steps if not step.declares)
    body.append("</ol>")
    return _page(body, lang, _t(title, lang))


def _link(uri: str) -> str:
    """A link to the page of what `uri` names on this node, labelled as on its barcode."""
    e = html.escape
    try:
        path = canonical(uri).path
    except XinchainError:
        path = ""
    label = e(key_label(uri))
    return f"<a href='{e(path)}'>{label}</a>" if path else label


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
    for quantity in _quantities(step.document):
        rows.append((_t("quantity", lang), quantity))
    details = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    via = f"<p class='muted'>{e(_t('via', lang))}: {_link(step.via)}</p>" if step.via else ""
    receipt = f"/v1/provenance/events/{step.digest}/receipt"
    retracted = _retraction(step, lang) if step.retracted_by else ""
    classes = "step retracted" if step.retracted_by else "step"
    return (
        f"<li class='{classes}' data-step='{e(event['biz_step'])}'>"
        f"<h2>{e(step_label(event['biz_step'], lang))}</h2>{retracted}<dl>{details}</dl>"
        f"{_readings(step.document, lang)}{via}"
        f"<p><span class='ok'>✓ {e(_t('verified', lang))}</span> · "
        f"<a class='receipt' href='{e(receipt)}' download='{e(step.digest[:16])}.receipt.json'>"
        f"{e(_t('receipt', lang))}</a></p></li>"
    )


def _retraction(step: Step, lang: int) -> str:
    e = html.escape
    parts = [f"<p class='bad retraction'>{e(_t('retracted', lang))}</p><p class='muted'>"]
    for event_id, digest in step.corrective:
        target = f"/v1/provenance/events/{digest}"
        shown = (
            f"<a class='corrective' href='{e(target)}'>{e(event_id)}</a>" if digest else e(event_id)
        )
        parts.append(f"{e(_t('corrected_by', lang))}: {shown}<br>")
    parts.append("</p>")
    return "".join(parts)


def _quantities(document: dict[str, Any]) -> list[str]:
    found = []
    for field in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        for element in document.get(field, []) or []:
            if isinstance(element, dict) and isinstance(element.get("epcClass"), str):
                amount = f"{element.get('quantity', '')} {_unit(element.get('uom'))}".strip()
                found.append(f"{key_label(element['epcClass'])}: {amount}")
    return found


def _unit(code: object) -> str:
    return UNIT_SYMBOLS.get(code, code) if isinstance(code, str) else ""


def _measurement(value: object) -> str:
    text = str(value or "")
    return text.removeprefix("gs1:").removeprefix("https://gs1.org/voc/")


def _readings(document: dict[str, Any], lang: int) -> str:
    """Sensor readings with their units; a reading outside its storage limit, or reported as an
    alarm, is marked so that a broken cold chain shows at a glance."""
    e = html.escape
    rows: list[str] = []
    for element in document.get("sensorElementList", []) or []:
        reports = element.get("sensorReport", []) if isinstance(element, dict) else []
        for report in reports if isinstance(reports, list) else []:
            if not isinstance(report, dict):
                continue
            kind = _measurement(report.get("type"))
            label = MEASUREMENT_LABELS.get(kind, (kind, kind))[lang] if kind else ""
            unit = _unit(report.get("uom"))
            values = [
                (name, report[name])
                for name in ("value", "minValue", "maxValue", "meanValue")
                if isinstance(report.get(name), int | float | Decimal)
                and not isinstance(report.get(name), bool)
            ]
            text = ", ".join(
                f"{'' if name == 'value' else name.removesuffix('Value') + ' '}{number} {unit}"
                for name, number in values
            )
            for name in ("stringValue", "booleanValue", "uriValue"):
                if name in report:
                    text = (text + ", " if text else "") + str(report[name])
            warning = _out_of_range(kind, report, values, lang)
            css = " class='reading bad-reading'" if warning else " class='reading'"
            rows.append(f"<dt>{e(label)}</dt><dd{css}>{e(text.strip())}{e(warning)}</dd>")
    if not rows:
        return ""
    return f"<dl class='readings' aria-label='{e(_t('readings', lang))}'>{''.join(rows)}</dl>"


def _out_of_range(
    kind: str, report: dict[str, Any], values: list[tuple[str, Any]], lang: int
) -> str:
    if report.get("exception"):
        return f" ⚠ {_t('alarm', lang)}"
    low, high = SENSOR_LIMITS.get((kind, str(report.get("uom"))), (None, None))
    for _, number in values:
        try:
            reading = Decimal(str(number))
        except InvalidOperation:
            continue
        if (low is not None and reading < low) or (high is not None and reading > high):
            if low is None or high is None:
                bounds = f"≤ {high}" if low is None else f"≥ {low}"
            else:
                bounds = f"{low} to {high}"
            unit = _unit(report.get("uom"))
            return f" ⚠ {_t('out_of_range', lang)} ({_t('limit', lang)} {bounds} {unit})"
    return ""


def _page(body: list[str], lang: int, title: str = "") -> str:
    code = "zh-CN" if lang else "en"
    return (
        f"<!doctype html><html lang='{code}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title or _t('title', lang))}</title><style>{_CSS}</style></head>"
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
font-size:14px;overflow-wrap:anywhere}a{color:#175cd3}.retracted h2{text-decoration:
line-through;color:#667085}.retraction{margin:4px 0}.readings{margin-top:6px}.bad-reading{
color:#b42318;font-weight:600}ul.contents{padding-left:28px}
"""

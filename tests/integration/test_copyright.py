"""Copyright on a real node: register photos, find copies, record evidence, export a package a
court checks offline.

Images are generated product photos (tests/support/image_set.py). One `xinchain up` serves the
module; orgs are the demo consortium's (platform vouches for sellers, brand owns its photos,
regulator records evidence for anyone, forwarder is neither owner nor regulator).

Scenarios:

* `copyright register` of three photos as the brand and one as the platform for a seller:
  receipts written, each passing `xinchain verify`, each carrying its work (SHA-256 of the file,
  PDQ, 25 crop hashes, local features, title, org, seller).
* The same photo again, by another org: refused, naming the first owner; the record unchanged.
* `copyright search` of a copy resized to 50 %, mirrored and cropped finds the work with its
  distance; an unrelated photo finds nothing; the exact file is reported as an exact copy.
* A search of copies made as infringers make them (cut up to 10 % a side, under a price
  banner or a watermark, inside a phone screenshot, turned by up to 5°) finds the work, and
  only it, by its local features, with the inliers of its 64 registered points.
* `copyright evidence` of a captured copy records the distance the chain computed (≤ 31) and
  how many of the work's 64 points the copy shows in place, and its receipt verifies; the
  forwarder recording evidence for the brand's work is refused.
* `copyright export` with the captured file and the original: `xinchain verify pkg.zip` says
  valid and names the files. Then every file in the package is tampered with, one at a time,
  each way: a byte changed at its start, middle and end; JSON re-indented; the file removed.
  Also: a file added; a captured file swapped for another with the manifest rewritten to match;
  a receipt from another registration swapped in. Each is refused, naming what is wrong.
* The package the API exports (receipts and report, no files) verifies too.
* Gateway: registering through the API without the token, or with a wrong one, is refused;
  with the token it registers as the node's org and answers the receipt.
* Bad input: a body that is not an image gets 400 naming `image`; an image over the size limit
  gets 413; an unknown work 404; a malformed PDQ 400.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import copy_kinds
import httpx
import pytest
from image_set import crop_5, flip, generate_photo, resize_half
from PIL import Image
from receipts import verify_receipt

from xinchain.apps.copyright import features
from xinchain.apps.copyright.evidence import EvidenceInvalid, verify_package
from xinchain.apps.copyright.features import LocalFeatures
from xinchain.apps.copyright.perceptual import image_bytes_max, match_distance_max

pytestmark = pytest.mark.slow  # runs real processes (a node, a browser) or a large set

if TYPE_CHECKING:
    from conftest import RunningNode

Cli = Callable[..., subprocess.CompletedProcess[str]]
SEED = 20261127


def photo(index: int) -> bytes:
    return generate_photo(index, SEED).data


def ok(process: subprocess.CompletedProcess[str]) -> str:
    assert process.returncode == 0, process.stdout + process.stderr
    return process.stdout


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    named = {
        "bottle.jpg": photo(0),
        "box.jpg": photo(1),
        "jar.jpg": photo(2),
        "seller.jpg": photo(3),
        "unrelated.jpg": photo(4),
        "copy.jpg": crop_5(flip(resize_half(photo(0))), random.Random(7)),
    }
    paths = {}
    for name, data in named.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


@pytest.fixture(scope="module")
def registered(
    module_node: RunningNode,
    cli: Cli,
    files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    out = tmp_path_factory.mktemp("receipts")
    home, api = module_node.home, module_node.api
    brand = [files[name] for name in ("bottle.jpg", "box.jpg", "jar.jpg")]
    ok(
        cli(
            "copyright",
            "register",
            *brand,
            "--out",
            out,
            "--home",
            home,
            "--api",
            api,
            "--as",
            "brand",
        )
    )
    ok(
        cli(
            "copyright", "register", files["seller.jpg"], "--seller", "shop-42", "--title",
            "Seller's jar", "--out", out, "--home", home, "--api", api, "--as", "platform",
        )
    )  # fmt: skip
    return out


def receipt_of(registered: Path, name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((registered / f"{name}.work.json").read_text())
    return value


def test_registered_works_have_receipts_that_verify(
    registered: Path, files: dict[str, Path], cli: Cli, module_node: RunningNode
) -> None:
    genesis_hash = httpx.get(f"{module_node.api}/v1/status").json()["genesis_hash"]
    for name, org, seller in [
        ("bottle.jpg", "brand", ""),
        ("box.jpg", "brand", ""),
        ("jar.jpg", "brand", ""),
        ("seller.jpg", "platform", "shop-42"),
    ]:
        receipt = receipt_of(registered, name)
        work = receipt["work"]
        assert work["sha256"] == hashlib.sha256(files[name].read_bytes()).hexdigest()
        assert (work["org"], work["seller"]) == (org, seller)
        assert len(work["crops"]) == 25
        assert len(LocalFeatures.decode(work["features"])) == features.registered_points_max
        verify_receipt(receipt, None, expected_genesis_hash=genesis_hash)
        out = ok(cli("verify", registered / f"{name}.work.json", "--genesis-hash", genesis_hash))
        assert out.startswith("valid: work"), out


def test_the_first_registration_stands(
    registered: Path, files: dict[str, Path], cli: Cli, module_node: RunningNode, tmp_path: Path
) -> None:
    again = cli(
        "copyright", "register", files["bottle.jpg"], "--out", tmp_path, "--home",
        module_node.home, "--api", module_node.api, "--as", "platform", "--seller", "thief",
    )  # fmt: skip
    assert again.returncode == 1
    assert "already registered, by org 'brand'" in again.stderr
    sha256 = receipt_of(registered, "bottle.jpg")["work"]["sha256"]
    work = httpx.get(f"{module_node.api}/v1/copyright/works/{sha256}").json()["work"]
    assert (work["org"], work["seller"]) == ("brand", "")


def test_search_finds_an_edited_copy_and_nothing_for_an_unrelated_photo(
    registered: Path, files: dict[str, Path], cli: Cli, module_node: RunningNode
) -> None:
    api = module_node.api
    found = json.loads(ok(cli("copyright", "search", files["copy.jpg"], "--api", api, "--json")))
    bottle = receipt_of(registered, "bottle.jpg")["work"]["sha256"]
    assert [m["work"]["sha256"] for m in found["matches"]] == [bottle]
    assert found["matches"][0]["distance"] <= match_distance_max
    assert found["exact"] is None

    text = ok(cli("copyright", "search", files["unrelated.jpg"], "--api", api))
    assert "no registered work within distance 31" in text

    exact = json.loads(ok(cli("copyright", "search", files["box.jpg"], "--api", api, "--json")))
    assert exact["exact"]["sha256"] == receipt_of(registered, "box.jpg")["work"]["sha256"]
    assert exact["matches"][0]["distance"] == 0


@pytest.mark.parametrize("kind", ["crop", "banner", "screenshot", "rotate", "watermark"])
def test_search_finds_copies_made_as_infringers_make_them_by_local_features(
    registered: Path, module_node: RunningNode, kind: str
) -> None:
    original = Image.open(io.BytesIO(photo(1))).convert("RGB")
    copy = io.BytesIO()
    copy_kinds.make(original, kind, 7).save(copy, "JPEG", quality=90)
    response = httpx.post(
        f"{module_node.api}/v1/copyright/images/search", content=copy.getvalue(), timeout=60
    )
    assert response.status_code == 200, response.text
    matches = response.json()["matches"]
    box = receipt_of(registered, "box.jpg")["work"]
    assert [found["work"]["sha256"] for found in matches] == [box["sha256"]]
    assert "features" in matches[0]["found_by"]
    assert features.inliers_min <= matches[0]["inliers"] <= matches[0]["points"] == 64


def test_a_search_by_hash_alone_uses_no_local_features(
    registered: Path, module_node: RunningNode
) -> None:
    original = Image.open(io.BytesIO(photo(1))).convert("RGB")
    copy = io.BytesIO()
    copy_kinds.make(original, "banner", 3).save(copy, "JPEG", quality=90)
    box = receipt_of(registered, "box.jpg")["work"]["sha256"]
    search = f"{module_node.api}/v1/copyright/images/search"
    answers = {}
    for by in ("hash", "all"):
        response = httpx.post(search, params={"by": by}, content=copy.getvalue(), timeout=60)
        assert response.status_code == 200, response.text
        steps = [
            part.split(";")[0].strip() for part in response.headers["server-timing"].split(",")
        ]
        assert steps == (
            ["pdq", "hash"] if by == "hash" else ["pdq", "hash", "points", "candidates", "verify"]
        )
        answers[by] = response.json()
    assert all(m["found_by"] == ["hash"] and m["inliers"] == 0 for m in answers["hash"]["matches"])
    assert [m["work"]["sha256"] for m in answers["all"]["matches"]] == [box]
    assert "features" in answers["all"]["matches"][0]["found_by"]
    index = answers["all"]["index"]
    assert index["registered"] == index["indexed"] >= 4 and index["following"] is True
    assert httpx.get(f"{module_node.api}/v1/copyright/index").json()["indexed"] == index["indexed"]
    refused = httpx.post(search, params={"by": "colour"}, content=copy.getvalue(), timeout=60)
    assert refused.status_code == 422
    assert "by" in refused.text and "all|hash" in refused.text


@pytest.fixture(scope="module")
def evidence_id(
    registered: Path,
    files: dict[str, Path],
    cli: Cli,
    module_node: RunningNode,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    out = tmp_path_factory.mktemp("evidence")
    bottle = receipt_of(registered, "bottle.jpg")["work"]["sha256"]
    page = out / "page.html"
    page.write_text("<html><body><img src='copy.jpg'> 爆款奶瓶 9.9 包邮</body></html>")
    text = ok(
        cli(
            "copyright", "evidence", files["copy.jpg"], page, "--work", bottle, "--url",
            "https://shop.example/item/998", "--note", "found by the brand's patrol", "--out",
            out, "--home", module_node.home, "--api", module_node.api, "--as", "brand",
        )
    )  # fmt: skip
    evidence = text.split("recorded evidence ")[1].split(" ")[0]
    receipts = list(out.glob("evidence-*.json"))
    assert len(receipts) == 1
    record = json.loads(receipts[0].read_text())["evidence"]
    assert 0 <= record["distance"] <= match_distance_max
    assert features.inliers_min <= record["inliers"] <= record["points"] == 64
    assert [f["name"] for f in record["files"]] == ["copy.jpg", "page.html"]
    return evidence


def test_evidence_by_an_org_that_neither_owns_nor_regulates_is_refused(
    registered: Path, files: dict[str, Path], cli: Cli, module_node: RunningNode, tmp_path: Path
) -> None:
    bottle = receipt_of(registered, "bottle.jpg")["work"]["sha256"]
    refused = cli(
        "copyright", "evidence", files["copy.jpg"], "--work", bottle, "--url",
        "https://shop.example/x", "--out", tmp_path, "--home", module_node.home, "--api",
        module_node.api, "--as", "forwarder",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "may not record evidence" in refused.stderr


@pytest.fixture(scope="module")
def package(
    evidence_id: str,
    files: dict[str, Path],
    cli: Cli,
    module_node: RunningNode,
    tmp_path_factory: pytest.TempPathFactory,
) -> bytes:
    out = tmp_path_factory.mktemp("package") / "evidence.zip"
    page = next(Path(p) for p in tmp_path_factory.getbasetemp().rglob("page.html"))
    ok(
        cli(
            "copyright", "export", evidence_id, "--out", out, "--capture", files["copy.jpg"],
            "--capture", page, "--original", files["bottle.jpg"], "--api", module_node.api,
        )
    )  # fmt: skip
    return out.read_bytes()


def test_the_exported_package_verifies_offline(
    package: bytes, cli: Cli, tmp_path: Path, module_node: RunningNode
) -> None:
    path = tmp_path / "evidence.zip"
    path.write_bytes(package)
    genesis_hash = httpx.get(f"{module_node.api}/v1/status").json()["genesis_hash"]

    text = ok(cli("verify", path, "--genesis-hash", genesis_hash))

    assert text.startswith("valid: evidence package for work 'bottle' ")
    assert "capture/copy.jpg, capture/page.html, original/bottle.jpg" in text
    checked = verify_package(package, expected_genesis_hash=genesis_hash)
    assert checked.evidence["url"] == "https://shop.example/item/998"
    with pytest.raises(EvidenceInvalid, match="genesis"):
        verify_package(package, expected_genesis_hash="0" * 64)


def members_of(package: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def flipped(content: bytes, at: int) -> bytes:
    changed = bytearray(content)
    # A printable change inside text files keeps them decodable, so the content checks run.
    changed[at] = ord("0") if changed[at] != ord("0") else ord("1")
    return bytes(changed)


def test_every_file_of_the_package_is_protected(package: bytes) -> None:
    members = members_of(package)
    assert set(members) == {
        "manifest.json",
        "receipts/work.json",
        "receipts/evidence.json",
        "report.html",
        "original/bottle.jpg",
        "capture/copy.jpg",
        "capture/page.html",
    }
    verify_package(zipped(members))  # rezipping alone changes nothing that is checked
    undetected = []
    for name, content in members.items():
        variants = {
            f"{name}: byte {at} changed": {**members, name: flipped(content, at)}
            for at in (0, len(content) // 2, len(content) - 2)
        }
        variants[f"{name}: removed"] = {k: v for k, v in members.items() if k != name}
        if name.endswith(".json"):
            reindented = json.dumps(json.loads(content), indent=4, sort_keys=True).encode()
            variants[f"{name}: re-indented"] = {**members, name: reindented}
        for label, variant in variants.items():
            try:
                verify_package(zipped(variant))
            except EvidenceInvalid as exc:
                assert exc.reason, label
            else:
                undetected.append(label)
    assert undetected == []


def test_added_and_swapped_files_are_refused(package: bytes, registered: Path) -> None:
    members = members_of(package)
    with pytest.raises(EvidenceInvalid, match="unexpected file"):
        verify_package(zipped({**members, "notes.txt": b"hello"}))
    with pytest.raises(EvidenceInvalid, match=r"capture/extra\.jpg is not among"):
        verify_package(zipped({**members, "capture/extra.jpg": b"\xff\xd8"}))

    # A different capture, with the manifest rewritten to match it: the chain's hash decides.
    swapped = {**members, "capture/copy.jpg": photo(5)}
    manifest = json.loads(members["manifest.json"])
    for entry in manifest["files"]:
        if entry["path"] == "capture/copy.jpg":
            entry["sha256"] = hashlib.sha256(photo(5)).hexdigest()
    swapped["manifest.json"] = (
        json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    ).encode()
    with pytest.raises(EvidenceInvalid, match=r"capture/copy\.jpg hashes to"):
        verify_package(zipped(swapped))

    # Another work's registration receipt, valid on its own, swapped in.
    other = json.dumps(receipt_of(registered, "box.jpg"), sort_keys=True, indent=2)
    with pytest.raises(EvidenceInvalid, match="the evidence is about work"):
        verify_package(zipped({**members, "receipts/work.json": (other + "\n").encode()}))


def test_the_api_exports_a_package_that_verifies(
    evidence_id: str, module_node: RunningNode
) -> None:
    response = httpx.get(f"{module_node.api}/v1/copyright/evidence/{evidence_id}/package")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    checked = verify_package(response.content)
    assert checked.files == ()
    works = httpx.get(f"{module_node.api}/v1/copyright/orgs/brand/evidence").json()["evidence"]
    assert [item["id"] for item in works] == [evidence_id]


def test_the_gateway_signs_only_for_the_token_holder(module_node: RunningNode) -> None:
    api = module_node.api
    url = f"{api}/v1/copyright/images/register"
    image = photo(6)
    org = httpx.get(f"{api}/v1/copyright/gateway").json()["org"]
    assert org == "platform"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(url, params={"title": "x"}, content=image, headers=headers)
        assert response.status_code in (401, 403), response.text
        assert response.json()["error"]["field"] == "authorization"
    token = (module_node.home / "nodes" / "validator-0" / "gateway.token").read_text().strip()
    response = httpx.post(
        url,
        params={"title": "Gift box", "seller": "shop-7"},
        content=image,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["work"]["org"], answer["work"]["seller"]) == ("platform", "shop-7")
    assert verify_receipt(answer["receipt"], None).height == answer["height"]
    listed = httpx.get(f"{api}/v1/copyright/orgs/platform/works", params={"seller": "shop-7"})
    assert [w["title"] for w in listed.json()["works"]] == ["Gift box"]


def test_bad_input_gets_clear_errors(module_node: RunningNode) -> None:
    api = module_node.api
    response = httpx.post(f"{api}/v1/copyright/images/search", content=b"not an image")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "image"
    assert "not a readable image" in response.json()["error"]["reason"]

    response = httpx.post(
        f"{api}/v1/copyright/images/search", content=b"\0" * (image_bytes_max + 1), timeout=60
    )
    assert response.status_code == 413

    response = httpx.get(f"{api}/v1/copyright/works/{'ab' * 32}")
    assert response.status_code == 404
    response = httpx.get(f"{api}/v1/copyright/search", params={"pdq": "XYZ"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "pdq"
    assert httpx.get(f"{api}/v1/status").status_code == 200

"""Local features of photos: their encoding on chain, and what verify() says of copies.

* `encode`/`decode` round-trip a work's points (positions to 1/16 px, descriptors exactly);
  `decode` refuses anything else with an error naming what was expected: not base64, another
  format, a body that is not whole points, no points or too many, a frame larger than
  `frame_side`, a point outside its frame.
* A registration keeps at most `registered_points_max` points, spread over the picture: every
  cell of the 4 x 4 grid that has points keeps some.
* verify() finds generated product photos (five of six or more) in their copies cut up to
  10 % a side, turned by up to 5°, inside a screenshot, under a banner, and mirrored (through
  the mirrored query), with the transform's turn about right; it finds nothing between
  different generated photos.
* A search of a registered set (matching.WorkIndex) reports how it found each work: a resized
  copy by hash and by features, a bannered one by features at least; a photo never registered
  finds nothing.
"""

from __future__ import annotations

import base64
import io

import copy_kinds
import image_set
import numpy as np
import pytest
from PIL import Image

from xinchain.apps.copyright import features, perceptual
from xinchain.apps.copyright.features import FeaturesInvalid, LocalFeatures
from xinchain.apps.copyright.matching import FEATURES, HASH, Found, WorkIndex

SEED = 20_261_204


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [Image.open(io.BytesIO(image_set.generate_photo(i, SEED).data)) for i in range(6)]


@pytest.fixture(scope="module")
def registered(photos: list[Image.Image]) -> list[LocalFeatures]:
    return [features.registered_features(photo) for photo in photos]


def test_encoding_round_trips(registered: list[LocalFeatures]) -> None:
    for work in registered:
        decoded = LocalFeatures.decode(work.encode())
        assert (decoded.width, decoded.height) == (work.width, work.height)
        assert np.array_equal(decoded.descriptors, work.descriptors)
        assert np.abs(decoded.points - work.points).max() <= 1 / 32


def _encoded(header: bytes, body: bytes) -> str:
    return base64.b64encode(header + body).decode()


POINT = b"\x00\x10\x00\x10" + bytes(32)  # (1, 1) and a zero descriptor


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (17, "base64 text"),
        ("not base64!", "standard base64"),
        ("ü", "standard base64"),
        (_encoded(b"\x02\x01\x00\x01\x00", POINT), "format 1"),
        (_encoded(b"\x01\x01\x00\x01\x00", POINT[:-1]), "points of 36 bytes"),
        (_encoded(b"\x01\x01\x00\x01\x00", b""), "1 to 64 points"),
        (_encoded(b"\x01\x01\x00\x01\x00", POINT * 65), "1 to 64 points"),
        (_encoded(b"\x01\x08\x01\x01\x00", POINT), "1 to 2048 pixels"),
        (_encoded(b"\x01\x00\x00\x01\x00", POINT), "1 to 2048 pixels"),
        (
            _encoded(b"\x01\x00\x01\x00\x01", b"\x00\x20\x00\x20" + bytes(32)),
            "inside the 1 x 1 frame",
        ),
    ],
)
def test_decode_refuses_what_is_not_local_features(text: object, expected: str) -> None:
    with pytest.raises(FeaturesInvalid, match=expected) as raised:
        LocalFeatures.decode(text, field="works[0].features")
    assert raised.value.field == "works[0].features"


def test_a_registration_keeps_its_points_spread_over_the_picture(
    photos: list[Image.Image], registered: list[LocalFeatures]
) -> None:
    def cells(found: LocalFeatures) -> set[tuple[int, int]]:
        return {(int(x * 4 // found.width), int(y * 4 // found.height)) for x, y in found.points}

    for photo, work in zip(photos, registered, strict=True):
        assert 1 <= len(work) <= features.registered_points_max
        every = features.describe(photo, 10_000)  # all ORB finds
        assert len(every) > len(work)
        assert cells(work) == cells(every)


@pytest.mark.parametrize("kind", ["crop", "rotate", "screenshot", "banner", "mirror"])
def test_verify_finds_a_photo_in_its_copies(
    photos: list[Image.Image], registered: list[LocalFeatures], kind: str
) -> None:
    # Generated photos have less detail than camera photos (bench/copyright_recall.py measures
    # those): one of the six may fall short of inliers_min.
    found = []
    for number, photo in enumerate(photos):
        copy = copy_kinds.make(photo, kind, number)
        queries = features.query_features(copy)
        best = max(
            (features.verify(query, registered[number]) for query in queries),
            key=lambda verification: verification.inliers,
        )
        found.append(best.matched)
        if best.matched and kind != "screenshot":
            assert abs(best.rotation_deg) <= 6, best
    assert sum(found) >= len(photos) - 1, found


def test_verify_finds_nothing_between_different_photos(
    photos: list[Image.Image], registered: list[LocalFeatures]
) -> None:
    for number, photo in enumerate(photos):
        queries = features.query_features(photo)
        for other, work in enumerate(registered):
            if other != number:
                for query in queries:
                    found = features.verify(query, work)
                    assert not found.matched, (number, other, found)
                    assert found.inliers < features.inliers_min


@pytest.fixture(scope="module")
def works(photos: list[Image.Image], registered: list[LocalFeatures]) -> WorkIndex:
    index = WorkIndex()
    for number, photo in enumerate(photos[:5]):
        hashes = perceptual.work_hashes(_jpeg(photo))
        index.add(
            [(number, row) for row in (hashes.pdq.pdq, *hashes.crops)],
            [(number, registered[number])],
        )
    return index


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=92)
    return out.getvalue()


def _search(index: WorkIndex, registered: list[LocalFeatures], image: Image.Image) -> list[Found]:
    return index.search(
        list(perceptual.hash_image(_jpeg(image)).hashes),
        features.query_features(image),
        lambda number: registered[number] if number < 5 else None,
        perceptual.match_distance_max,
        10,
    )


def test_a_search_says_how_each_work_was_found(
    photos: list[Image.Image], registered: list[LocalFeatures], works: WorkIndex
) -> None:
    resized = _search(works, registered, copy_kinds.make(photos[2], "resize", 1))
    assert [found.number for found in resized] == [2]
    assert resized[0].methods == (HASH, FEATURES)
    assert resized[0].distance is not None and resized[0].distance <= 31
    assert resized[0].inliers >= features.inliers_min
    bannered = _search(works, registered, copy_kinds.make(photos[3], "banner", 4))
    assert [found.number for found in bannered] == [3]
    assert FEATURES in bannered[0].methods
    assert bannered[0].verification is not None and bannered[0].verification.matched


def test_a_search_for_a_photo_never_registered_finds_nothing(
    photos: list[Image.Image], registered: list[LocalFeatures], works: WorkIndex
) -> None:
    assert _search(works, registered, photos[5]) == []


def test_verify_skips_ransac_below_the_pairs_a_match_needs(
    photos: list[Image.Image], registered: list[LocalFeatures]
) -> None:
    query = features.query_features(copy_kinds.make(photos[0], "resize", 2))[0]
    full = features.verify(query, registered[0])
    assert full.matched
    # The same pair with `least` above every pair there is: no transform, nothing in place.
    gated = features.verify(query, registered[0], least=features.registered_points_max + 1)
    assert (gated.inliers, gated.registered, gated.matched) == (0, len(registered[0]), False)
    # At inliers_min, a copy still matches with the same inliers.
    assert features.verify(query, registered[0], least=features.inliers_min) == full


def test_a_mirrored_copy_is_verified_in_the_mirror_orientation(
    photos: list[Image.Image], registered: list[LocalFeatures], works: WorkIndex
) -> None:
    mirrored = _search(works, registered, copy_kinds.make(photos[1], "mirror", 3))
    assert [found.number for found in mirrored][:1] == [1]
    assert FEATURES in mirrored[0].methods


@pytest.mark.parametrize("size", [(1, 40_000), (40_000, 1), (2, 70_000), (3, 900), (1, 3)])
def test_a_strip_a_few_pixels_wide_has_no_points(size: tuple[int, int]) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    found = features.describe(Image.fromarray(noise), features.query_points_max)
    assert len(found) == 0
    assert 1 <= found.width <= features.frame_side and 1 <= found.height <= features.frame_side


def test_the_index_keeps_each_works_points_as_the_chain_holds_them(
    registered: list[LocalFeatures],
) -> None:
    index = WorkIndex()
    chain = [LocalFeatures.decode(work.encode()) for work in registered]  # as a node reads them
    # Works out of order, in several additions (the arrays grow), one without features.
    for batch in ([(3, chain[3]), (0, chain[0])], [(5, chain[5])], [(1, chain[1]), (4, chain[4])]):
        index.add([], batch)
    index.add([], [(2, _no_points())])
    for number in (0, 1, 3, 4, 5):
        assert index.features_of(number) == chain[number]
    assert index.features_of(2) is None
    assert index.features_of(6) is None
    assert index.features_of(10_000) is None


def _no_points() -> LocalFeatures:
    return LocalFeatures(64, 64, np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))


def test_the_mirrored_query_describes_the_same_points_as_the_mirror_image() -> None:
    photo = Image.open(io.BytesIO(image_set.generate_photo(7, SEED).data))
    _, mirrored = features.query_features(photo)
    detected = features.describe(
        photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), features.query_points_max
    )
    # The same corners found again in the mirror image, in place and alike: nearly all pairs.
    found = features.verify(mirrored, detected)
    assert found.matched and found.inliers >= 0.9 * min(len(mirrored), len(detected))
    assert abs(found.scale - 1) < 0.01 and abs(found.rotation_deg) < 0.5


def _flipped(value: bytes, bits: int, seed: int) -> bytes:
    """`value` with `bits` of its 256 bits changed."""
    chosen = np.random.default_rng(seed).choice(256, bits, replace=False)
    number = int.from_bytes(value, "big")
    for bit in chosen.tolist():
        number ^= 1 << bit
    return number.to_bytes(32, "big")


@pytest.mark.parametrize(
    ("count", "slot", "bits", "found"),
    [
        (9, 0, 31, True),  # the picture as given: within 31
        (9, 8, 31, True),  # its mirrored pixels: within 31
        (9, 5, 31, True),  # PDQ's derived mirror hash: within 31 (either mirror may be nearer)
        (9, 5, 32, False),
        (8, 5, 31, True),  # ... and when the mirrored pixels were not hashed
        (9, 1, 15, True),  # turned a quarter: within 15 only
        (9, 1, 16, False),
        (8, 7, 16, False),
        (1, 0, 31, True),  # one hash (a search by a client's hash): within 31
    ],
)
def test_turned_hashes_are_looked_up_closer(count: int, slot: int, bits: int, found: bool) -> None:
    stored = bytes(range(32))
    index = WorkIndex()
    index.add([(7, stored)], [])
    unrelated = [bytes([255 - i] * 32) for i in range(count)]
    queries = [*unrelated[:slot], _flipped(stored, bits, slot), *unrelated[slot + 1 :]]
    assert (7 in index.by_hash(queries, perceptual.match_distance_max, 10)) is found


def test_a_large_jpeg_is_described_from_a_reduced_decoding_and_still_matches() -> None:
    photo = Image.open(io.BytesIO(image_set.generate_photo(9, SEED).data)).convert("RGB")
    large = photo.resize((2400, 2400 * photo.height // photo.width), Image.Resampling.LANCZOS)
    data = _jpeg(large)
    decoded = perceptual.load_image(data, area_least=features.frame_area)
    # Decoded at a half, quarter or eighth of its size, yet never below the frame's area.
    assert decoded.width < large.width and decoded.width * decoded.height >= features.frame_area
    assert perceptual.load_image(data).size == large.size
    registered = features.registered_features(Image.fromarray(perceptual.load_rgb(data)))
    query, _mirrored = perceptual.query_points(data)
    found = features.verify(query, registered)
    # The same decoding would find all 64 in place; another decoding finds most (50-56 in
    # measurements), far above the line.
    assert found.matched and found.inliers >= 0.7 * len(registered)
    assert abs(found.scale - 1) < 0.05 and abs(found.rotation_deg) < 1
    # A PNG has no such decoding: described at full size, the same way.
    out = io.BytesIO()
    large.save(out, "PNG")
    assert perceptual.load_image(out.getvalue(), area_least=features.frame_area).size == large.size

"""Local features of photos: what finds a copy that was cropped, bannered, screenshotted or tilted.

A perceptual hash describes a whole picture, so anything that changes the whole (cutting 10 %
off one side, pasting the photo into a listing page, turning it by 5°) moves it far. Local
features describe small patches around corners and blobs, each on its own: most of them
survive those edits, and where they do, they still lie where the original had them, up to one
similarity transform (a shift, a scale and a turn). That is what the field does for near-
duplicate and copy detection: local features to find and confirm candidates, a consistent
geometric transform (RANSAC) as the proof.

* **Points.** ORB (FAST corners, oriented BRIEF: 256-bit binary descriptors, rotation
  invariant, over an 8-level scale pyramid; Rublee et al., ICCV 2011) on the grey picture
  reduced or enlarged to about `frame_area` pixels, so that every copy's points are found at
  comparable scales. A registration keeps `registered_points_max` points, the
  strongest in each cell of a 4 x 4 grid in turn, so that a crop or a banner over one part of
  the photo leaves most of them; a search takes up to `query_points_max`, spread the same way
  (a watermark's letters are strong corners and would otherwise crowd out the photo's own).
* **Proof.** Each query descriptor's nearest registered descriptor by Hamming distance is kept
  if it is at most `descriptor_distance_max` away and clearly nearer than the second nearest
  (Lowe's ratio test, `ratio_max`), each registered point at most once; a similarity
  transform is then fitted to the pairs by RANSAC (`ransac_threshold_px` in the frame), and
  the pairs it explains are the inliers. A copy keeps tens of inliers; two different photos
  keep a handful by chance. `inliers_min` is the line.
* **Mirror images.** ORB is not mirror invariant: a search also describes the query mirrored
  left to right.

On chain a work carries its points as `features` (feature_codec.py, which the contract uses
without loading OpenCV): the frame's size and, for each point, its position and descriptor;
36 bytes a point, base64. They are the client's claim, as
the perceptual hashes are: the node uses them to answer searches, and the contract counts
them (a piece of evidence's `points`) and checks their form, never their content.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from xinchain.apps.copyright.feature_codec import FeaturesInvalid as FeaturesInvalid
from xinchain.apps.copyright.feature_codec import LocalFeatures as LocalFeatures
from xinchain.apps.copyright.feature_codec import descriptor_bytes as descriptor_bytes
from xinchain.apps.copyright.feature_codec import frame_side as frame_side
from xinchain.apps.copyright.feature_codec import inliers_min as inliers_min
from xinchain.apps.copyright.feature_codec import position_scale as position_scale
from xinchain.apps.copyright.feature_codec import registered_points_max as registered_points_max

# Pictures are described at about this many pixels in all (512 x 512), whatever their shape:
# a photo that fills half of a tall screenshot's area then keeps 71 % of its own size, where
# scaling by the longer side would leave it half as large. No side exceeds `frame_side`.
frame_area = 512 * 512
# The most points a search describes in each orientation (a registration keeps
# registered_points_max).
query_points_max = 1500
# ORB keeps its strongest candidates over the whole picture before the grid spreads them:
# at least this many, so that weaker parts of the picture still have some to offer.
orb_candidates_min = 2000
# FAST threshold: low, so that product photos on plain backgrounds still give points.
fast_threshold = 7
grid_cells = 4  # per side
# ORB's pyramid: each level this much smaller than the one before.
scale_factor = 1.2
levels = 8
# A frame narrower than this has no points: ORB's patch (31 pixels) and border (15) do not fit.
frame_side_min = 32
descriptor_distance_max = 64  # of 256 bits
ratio_max = 0.85
ransac_threshold_px = 4.0
ransac_iterations = 2000
# A similarity transform further from the original's scale than this is no copy: a thumbnail
# of a picture in a much larger frame, or a tiny detail blown up.
scale_range = (0.25, 4.0)


def frame(image: Image.Image) -> NDArray[np.uint8]:
    """The picture in grey, scaled to about `frame_area` pixels."""
    grey = np.asarray(image.convert("L"))
    height, width = grey.shape
    scale = min((frame_area / (width * height)) ** 0.5, frame_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if min(size) < frame_side_min:
        # A strip: no corner ORB could describe, and OpenCV refuses to scale some of them.
        return np.zeros((size[1], size[0]), dtype=np.uint8)
    if size != (width, height):
        method = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        grey = cv2.resize(grey, size, interpolation=method)
    return np.ascontiguousarray(grey)


def _no_points(width: int, height: int) -> LocalFeatures:
    empty = np.zeros((0, 2), np.float32)
    return LocalFeatures(width, height, empty, np.zeros((0, descriptor_bytes), np.uint8))


def _orb(count: int) -> cv2.ORB:
    return cv2.ORB.create(
        nfeatures=max(count, orb_candidates_min),
        scaleFactor=scale_factor,
        nlevels=levels,
        edgeThreshold=15,
        patchSize=31,
        fastThreshold=fast_threshold,
    )


def _detect(grey: NDArray[np.uint8], count: int) -> tuple[list[cv2.KeyPoint], NDArray[np.uint8]]:
    """Up to `count` ORB points of a frame (the keypoints and their descriptors), spread over
    a grid, strongest first in each cell."""
    height, width = grey.shape
    if min(height, width) < frame_side_min:
        return [], np.zeros((0, descriptor_bytes), np.uint8)
    keypoints, found = _orb(count).detectAndCompute(grey, None)
    if found is None or not keypoints:
        return [], np.zeros((0, descriptor_bytes), np.uint8)
    points = np.array([keypoint.pt for keypoint in keypoints], dtype=np.float32)
    response = np.array([keypoint.response for keypoint in keypoints], dtype=np.float32)
    chosen = _spread(points, response, width, height, count)
    descriptors = np.asarray(found, dtype=np.uint8)[chosen]
    return [keypoints[i] for i in chosen.tolist()], descriptors


def _features(
    grey: NDArray[np.uint8], keypoints: list[cv2.KeyPoint], descriptors: NDArray[np.uint8]
) -> LocalFeatures:
    height, width = grey.shape
    if not keypoints:
        return _no_points(width, height)
    points = np.array([keypoint.pt for keypoint in keypoints], dtype=np.float32)
    return LocalFeatures(width, height, points, descriptors)


def describe(image: Image.Image, count: int) -> LocalFeatures:
    """Up to `count` ORB points of `image`, spread over a grid, strongest first in each cell."""
    grey = frame(image)
    return _features(grey, *_detect(grey, count))


def _mirrored(
    mirrored: NDArray[np.uint8], keypoints: list[cv2.KeyPoint]
) -> tuple[list[cv2.KeyPoint], NDArray[np.uint8]]:
    """The points `keypoints` of a frame described in `mirrored`, that frame mirrored left to
    right. A corner stays a corner in the mirror image and ORB's orientation mirrors with it,
    so the detection is not run again: each keypoint is moved to its mirror position with its
    angle mirrored and described there (the descriptors equal those a detection on the mirror
    image gives)."""
    width = mirrored.shape[1]
    if not keypoints:
        return [], np.zeros((0, descriptor_bytes), np.uint8)
    moved = [
        cv2.KeyPoint(
            width - 1 - keypoint.pt[0],
            keypoint.pt[1],
            keypoint.size,
            (180.0 - keypoint.angle) % 360.0,
            keypoint.response,
            keypoint.octave,
            keypoint.class_id,
        )
        for keypoint in keypoints
    ]
    described, found = _orb(len(moved)).compute(mirrored, moved)
    if found is None or not described:
        return [], np.zeros((0, descriptor_bytes), np.uint8)
    return list(described), np.asarray(found, dtype=np.uint8)


def _spread(
    points: NDArray[np.float32], response: NDArray[np.float32], width: int, height: int, count: int
) -> NDArray[np.intp]:
    """Indices of up to `count` points: the strongest of each grid cell, then the second
    strongest of each, and so on (ties by position, so the choice is deterministic)."""
    column = np.minimum(points[:, 0] * grid_cells // max(width, 1), grid_cells - 1)
    row = np.minimum(points[:, 1] * grid_cells // max(height, 1), grid_cells - 1)
    cell = (row * grid_cells + column).astype(np.int64)
    order = np.lexsort((points[:, 0], points[:, 1], -response, cell))
    # Rank of each point within its cell, strongest 0.
    sorted_cells = cell[order]
    starts = np.searchsorted(sorted_cells, sorted_cells, side="left")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts
    final = np.lexsort((points[:, 0], points[:, 1], -response, cell, rank))
    return final[:count]


def registered_features(image: Image.Image) -> LocalFeatures:
    return describe(image, registered_points_max)


def query_features(image: Image.Image) -> tuple[LocalFeatures, LocalFeatures]:
    """The query's points as it is and mirrored left to right."""
    grey = frame(image)
    keypoints, descriptors = _detect(grey, query_points_max)
    mirrored = np.ascontiguousarray(grey[:, ::-1])
    return _features(grey, keypoints, descriptors), _features(
        mirrored, *_mirrored(mirrored, keypoints)
    )


@dataclass(frozen=True)
class Verification:
    """How a query's points line up with a registered picture's."""

    inliers: int  # registered points found where the transform puts them
    registered: int  # points the registration carries
    scale: float  # of the query relative to the registered picture (frames compared)
    rotation_deg: float

    @property
    def matched(self) -> bool:
        low, high = scale_range
        return self.inliers >= inliers_min and low <= self.scale <= high


NO_MATCH = Verification(0, 0, 0.0, 0.0)


def verify(query: LocalFeatures, registered: LocalFeatures, least: int = 3) -> Verification:
    """Pairs of nearest descriptors that pass the ratio test, then a RANSAC similarity. With
    fewer than `least` pairs (at least 3, which a transform needs) RANSAC is not run and no
    point is in place: a search passes inliers_min, which fewer pairs cannot reach."""
    if len(query) < 2 or len(registered) < 2:
        return NO_MATCH
    distances = _hamming_matrix(query.descriptors, registered.descriptors)
    nearest_two = np.argpartition(distances, 1, axis=1)[:, :2]
    rows = np.arange(len(query))
    first = distances[rows, nearest_two[:, 0]]
    second = distances[rows, nearest_two[:, 1]]
    swap = second < first
    best = np.where(swap, nearest_two[:, 1], nearest_two[:, 0])
    best_distance = np.minimum(first, second)
    other_distance = np.maximum(first, second)
    keep = (best_distance <= descriptor_distance_max) & (best_distance < ratio_max * other_distance)
    # Each registered point at most once: its nearest query point among those kept.
    candidates = np.flatnonzero(keep)
    order = candidates[np.lexsort((candidates, best_distance[candidates]))]
    _, first_of_each = np.unique(best[order], return_index=True)
    pairs = order[first_of_each]
    if len(pairs) < max(3, least):  # too few to fit a transform, or to make a match
        return Verification(0, len(registered), 0.0, 0.0)
    source = query.points[pairs].astype(np.float32)
    target = registered.points[best[pairs]].astype(np.float32)
    # OpenCV's RANSAC draws its samples from a generator of its own with a fixed seed: the
    # same pairs give the same answer every time.
    transform, inlier_mask = cv2.estimateAffinePartial2D(
        source,
        target,
        method=cv2.RANSAC,
        ransacReprojThreshold=ransac_threshold_px,
        maxIters=ransac_iterations,
        confidence=0.995,
    )
    if transform is None or inlier_mask is None:
        return Verification(0, len(registered), 0.0, 0.0)
    # transform maps query → registered; its scale is registered/query.
    a, b = float(transform[0, 0]), float(transform[1, 0])
    to_registered = float(np.hypot(a, b))
    scale = 1.0 / to_registered if to_registered > 0 else 0.0
    rotation = float(np.degrees(np.arctan2(b, a)))
    return Verification(int(inlier_mask.sum()), len(registered), scale, rotation)


def _hamming_matrix(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.int32]:
    """Hamming distances between every row of `a` and every row of `b` (32-byte rows)."""
    a_words = np.ascontiguousarray(a).view(np.uint64)
    b_words = np.ascontiguousarray(b).view(np.uint64)
    total = np.zeros((len(a), len(b)), dtype=np.int32)
    for word in range(a_words.shape[1]):
        total += np.bitwise_count(a_words[:, word, None] ^ b_words[None, :, word]).astype(np.int32)
    return total

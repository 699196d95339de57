"""Local features as the chain stores them: the codec, without OpenCV.

A work's `features` field (features.py says what the points are) is base64 of: a format byte,
the frame's width and height (2 bytes each, big-endian), then per point its x and y in
sixteenths of a pixel of the frame (2 bytes each) and its 32-byte ORB descriptor: 36 bytes a
point. The contract and the receipt checks decode it with this module alone, so executing a
transaction never loads OpenCV; positions are whole sixteenths, exact in float32.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xinchain.errors import XinchainError

# No side of a frame exceeds this many pixels.
frame_side = 2048
# Points a registration keeps.
registered_points_max = 64
descriptor_bytes = 32
position_scale = 16
# Points found in place (features.verify's inliers) that make a match. Different photos leave
# at most 5 in tests/unit measurements. Here, without OpenCV, for the evidence report.
inliers_min = 12

_FORMAT = 1
_HEADER = struct.Struct(">BHH")  # format, frame width, frame height
_POINT = struct.Struct(">HH")  # x, y in 1/16 px of the frame
_POINT_BYTES = _POINT.size + descriptor_bytes


class FeaturesInvalid(XinchainError):
    code = "invalid_features"


@dataclass(frozen=True, eq=False)
class LocalFeatures:
    """Points of one picture in its frame: positions (n x 2, pixels) and descriptors (n x 32).
    Two are equal when they encode alike."""

    width: int
    height: int
    points: NDArray[np.float32]
    descriptors: NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.points)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalFeatures) and self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.encode())

    def encode(self) -> str:
        """base64 of: format (1 byte), frame width and height (2 bytes each), then per point
        x and y in sixteenths of a pixel (2 bytes each) and its 32-byte descriptor."""
        parts = [_HEADER.pack(_FORMAT, self.width, self.height)]
        for (x, y), descriptor in zip(self.points, self.descriptors, strict=True):
            parts.append(_POINT.pack(_fixed(x), _fixed(y)))
            parts.append(descriptor.tobytes())
        return base64.b64encode(b"".join(parts)).decode("ascii")

    @classmethod
    def decode(cls, text: object, field: str = "features") -> LocalFeatures:
        if not isinstance(text, str):
            raise FeaturesInvalid("expected base64 text of local features", field=field)
        try:
            data = base64.b64decode(text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise FeaturesInvalid(
                "expected standard base64 (A-Z a-z 0-9 + /, = padding)", field=field
            ) from None
        if len(data) < _HEADER.size or data[0] != _FORMAT:
            raise FeaturesInvalid(f"expected local features of format {_FORMAT}", field=field)
        _, width, height = _HEADER.unpack_from(data)
        body = len(data) - _HEADER.size
        count = body // _POINT_BYTES
        if body % _POINT_BYTES or not 1 <= count <= registered_points_max:
            raise FeaturesInvalid(
                f"expected 1 to {registered_points_max} points of {_POINT_BYTES} bytes after "
                f"the {_HEADER.size}-byte header, found {body} bytes",
                field=field,
            )
        if not (1 <= width <= frame_side and 1 <= height <= frame_side):
            raise FeaturesInvalid(
                f"expected a frame of 1 to {frame_side} pixels a side, found {width} x {height}",
                field=field,
            )
        rows = np.frombuffer(data, dtype=np.uint8, offset=_HEADER.size).reshape(count, _POINT_BYTES)
        positions = rows[:, : _POINT.size].copy().view(">u2").astype(np.float32)
        positions /= np.float32(position_scale)
        if (positions[:, 0] > width).any() or (positions[:, 1] > height).any():
            raise FeaturesInvalid(
                f"expected every point inside the {width} x {height} frame", field=field
            )
        return cls(width, height, positions, rows[:, _POINT.size :].copy())

    @classmethod
    def decode_canonical(cls, text: object, field: str = "features") -> LocalFeatures:
        """decode, and the text must be exactly what encode writes for the same points (one
        spelling of each set of points on chain: base64 lets the last character's unused
        bits vary)."""
        decoded = cls.decode(text, field)
        if decoded.encode() != text:
            raise FeaturesInvalid(
                "expected the canonical base64 of the points (as encode writes it)", field=field
            )
        return decoded


def _fixed(value: float) -> int:
    return min(0xFFFF, max(0, round(float(value) * position_scale)))

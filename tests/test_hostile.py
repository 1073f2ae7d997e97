"""Issue #13, hostile files: no XML entity is ever resolved, nothing but a regular file reaches
Bio-Formats, no open hangs, and sizes that cannot be in the file are refused.

Each hostile file is a real file of the shared corpus (or make_lif.py's output) with a few bytes
changed; each test fails on the code before its fix (a local file's text in the metadata, an
open that never returns, a bare ``MemoryError``). Opens that used to hang run in one child
process (:func:`open_in_child`), each with a deadline, so that a regression fails instead of
hanging the suite; after each, the child reads a good file, to show that it still works.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import tifffile
from shared_data import DATA, MAKE_LIF, requires_data, requires_make_lif

import bfdask

if TYPE_CHECKING:
    from collections.abc import Callable

#: seconds any open may take here, hostile or not (a warm JVM answers in well under one)
ANSWER_WITHIN = 10.0
SECRET = "bfdask-hostile-secret-7Q2X"

# -- the child that opens files that used to hang -------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, os, sys, threading, time, warnings
    warnings.simplefilter("ignore")
    import bfdask

    def attempt(how, path):
        out = {}
        def run():
            try:
                if how == "list_series":
                    out["result"] = repr(bfdask.list_series(path))
                else:
                    data = bfdask.open(path)
                    out["result"] = repr(data.attrs) + repr(data.shape)
            except BaseException as exc:
                out["error"] = [c.__name__ for c in type(exc).__mro__]
                out["message"] = str(exc)
        start = time.perf_counter()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(float(sys.argv[1]))
        out["seconds"] = time.perf_counter() - start
        out["hung"] = thread.is_alive()
        return out

    good = os.path.join(sys.argv[2], "tiff", "mri.tif")
    for line in sys.stdin:
        how, path = json.loads(line)
        report = attempt(how, path)
        after = attempt("open", good)
        report["good_after"] = "result" in after and not after["hung"]
        print(json.dumps([path, report]), flush=True)
    sys.stdout.flush()
    os._exit(0)  # a thread still stuck in Java must not hold the process open
    """
)


def open_in_child(cases: list[tuple[str, Path]], deadline: float = 20.0) -> dict[str, Any]:
    """Open each ``(how, path)`` in one child process, each with ``deadline`` seconds.

    Returns ``{path: report}``; a report says ``hung``, or gives ``error`` (the exception's
    classes) and ``message``, or ``result``, with ``seconds`` and ``good_after``.
    """
    lines = "".join(json.dumps([how, str(path)]) + "\n" for how, path in cases)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(deadline), str(DATA)],
            input=lines,
            capture_output=True,
            text=True,
            timeout=30 + deadline * len(cases),
        )
        stdout = proc.stdout
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
    reports = dict(json.loads(line) for line in stdout.splitlines() if line.startswith("["))
    for _, path in cases:
        reports.setdefault(str(path), {"hung": True, "seconds": float("inf")})
    return reports


def assert_refused(report: dict[str, Any], error: type[Exception], *patterns: str) -> None:
    """The open answered in time with ``error``, whose message matches ``patterns``, and the
    child then read a good file."""
    assert not report["hung"], f"did not answer within the deadline: {report}"
    assert report["seconds"] < ANSWER_WITHIN, report
    assert "error" in report, f"opened instead of refusing: {report}"
    assert error.__name__ in report["error"], report
    assert "BfdaskError" in report["error"], report
    for pattern in patterns:
        assert re.search(pattern, report["message"]), (pattern, report["message"])
    assert SECRET not in report["message"]
    assert report["good_after"], report


# -- building hostile files from corpus files -----------------------------------------------


def ome_tiff_with_doctype(path: Path, doctype: str, text: str) -> Path:
    """The corpus OME-TIFF ``ome-types_ome.tiff`` (pixels and OME-XML) with ``doctype``
    before its root element and ``text`` as its image's Description."""
    with tifffile.TiffFile(DATA / "ome-tiff" / "ome-types_ome.tiff") as tif:
        xml, data = tif.ome_metadata, tif.asarray()
    assert xml is not None
    root = xml.index("<OME")
    xml = xml[:root] + doctype + xml[root:]
    xml = re.sub(
        r"(<Image [^>]*>)", lambda m: f"{m.group(1)}<Description>{text}</Description>", xml
    )
    tifffile.imwrite(path, data, description=xml, metadata=None)
    return path


def secret_file(directory: Path) -> Path:
    secret = directory / "secret.txt"
    secret.write_text(SECRET)
    return secret


def external_entity(secret: Path, root: str = "OME") -> str:
    return f'<!DOCTYPE {root} [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'


BILLION_LAUGHS = (
    '<!DOCTYPE OME [<!ENTITY l0 "lol">'
    + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    + "]>"
)


def ifd_offsets(raw: bytes) -> tuple[str, list[tuple[int, int]]]:
    """Byte order and ``(IFD offset, offset of its next-IFD pointer)`` of a classic TIFF."""
    order = "<" if raw[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", raw, 4)
    out = []
    while offset:
        (entries,) = struct.unpack_from(order + "H", raw, offset)
        pointer = offset + 2 + 12 * entries
        out.append((offset, pointer))
        (offset,) = struct.unpack_from(order + "I", raw, pointer)
    return order, out


def tiff_with_ifd_loop(source: Path, path: Path, after: int, back_to: int) -> Path:
    """``source`` with the pointer after IFD ``after`` leading back to IFD ``back_to``."""
    raw = bytearray(source.read_bytes())
    order, ifds = ifd_offsets(bytes(raw))
    struct.pack_into(order + "I", raw, ifds[after][1], ifds[back_to][0])
    path.write_bytes(raw)
    return path


def looped_tiff(path: Path, options: dict[str, Any]) -> Path:
    """A 3-page TIFF written by tifffile with ``options`` (BigTIFF, big-endian), whose IFD 2
    points back to IFD 1; the intact file is kept as ``intact-<name>``."""
    data = np.arange(3 * 4 * 4, dtype="uint8").reshape(3, 4, 4)
    intact = path.with_name(f"intact-{path.name}")
    tifffile.imwrite(intact, data, photometric="minisblack", metadata=None, **options)
    raw = bytearray(intact.read_bytes())
    with tifffile.TiffFile(intact) as tif:
        offsets = [page.offset for page in tif.pages]
        order, big = tif.byteorder, tif.is_bigtiff
    count, entry, pointer = ("Q", 20, "Q") if big else ("H", 12, "I")
    (entries,) = struct.unpack_from(order + count, raw, offsets[2])
    at = offsets[2] + struct.calcsize(count) + entries * entry
    struct.pack_into(order + pointer, raw, at, offsets[1])
    path.write_bytes(raw)
    return path


def patch_lif_header(source: Path, path: Path, change: Callable[[str], str]) -> Path:
    """``source`` with its XML header changed by ``change``, lengths kept consistent (the
    memory blocks follow the header, so they move with it)."""
    raw = source.read_bytes()
    magic, _length, mem, nchars = struct.unpack_from("<IIBI", raw)
    xml = raw[13 : 13 + 2 * nchars].decode("utf-16-le")
    new = change(xml)
    assert new != xml
    encoded = new.encode("utf-16-le")
    header = struct.pack("<IIBI", magic, 1 + 4 + len(encoded), mem, len(new))
    path.write_bytes(header + encoded + raw[13 + 2 * nchars :])
    return path


def lif_block_headers(raw: bytes) -> list[int]:
    """The offset of each memory block header of a LIF (version 2: 64-bit sizes)."""
    (nchars,) = struct.unpack_from("<I", raw, 9)
    position, out = 13 + 2 * nchars, []
    while position < len(raw):
        out.append(position)
        (size,) = struct.unpack_from("<Q", raw, position + 9)
        (name_chars,) = struct.unpack_from("<I", raw, position + 18)
        position += 22 + 2 * name_chars + size
    return out


def first_image(pattern: str, replacement: str) -> Callable[[str], str]:
    return lambda xml: re.sub(pattern, replacement, xml, count=1)


@pytest.fixture(scope="module")
def small_lif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """make_lif.py's LIF: 2 series of T 2 x Z 2 x C 2 x 8 x 8 uint16 (1024-byte blocks)."""
    path = tmp_path_factory.mktemp("lif") / "small.lif"
    sizes = ["--series", "2", "--t", "2", "--z", "2", "--c", "2", "--y", "8", "--x", "8"]
    subprocess.run(
        [sys.executable, str(MAKE_LIF), str(path), *sizes, "--dtype", "uint16", "--quiet"],
        check=True,
    )
    return path


def still_reads_a_good_file() -> None:
    data = bfdask.open(DATA / "tiff" / "mri.tif")
    assert int(data.isel(T=0, Z=0).max()) > 0


# -- the hostile files that used to hang, opened once in one child --------------------------


@pytest.fixture(scope="module")
def hang_reports(tmp_path_factory: pytest.TempPathFactory, small_lif: Path) -> dict[str, Any]:
    """Every case of defect 7 (and the absurd sizes of defect 8 that took minutes), built and
    opened in one child process; ``{case name: report}``."""
    tmp = tmp_path_factory.mktemp("hostile")
    extra_tiles = (
        '<DimensionDescription DimID="10" NumberOfElements="{n}" Origin="0" Length="0" '
        'Unit="" BitInc="0" BytesInc="{inc}"></DimensionDescription>'
    )
    t_dim = r'(<DimensionDescription DimID="4" [^>]*></DimensionDescription>)'
    channel = r'(<ChannelDescription [^>]*BytesInc="128"[^>]*></ChannelDescription>)'
    mri = DATA / "tiff" / "mri.tif"  # 27 planes: 27 IFDs
    cases: dict[str, tuple[str, Path]] = {
        "ifd_self_loop": ("open", tiff_with_ifd_loop(mri, tmp / "self.tif", 0, 0)),
        "ifd_loop_mid_chain": ("open", tiff_with_ifd_loop(mri, tmp / "mid.tif", 20, 5)),
        "billion_laughs": (
            "open",
            ome_tiff_with_doctype(tmp / "laughs.ome.tif", BILLION_LAUGHS, "&l9;"),
        ),
        "lif_1e8_tiles": (
            "list_series",
            patch_lif_header(
                small_lif,
                tmp / "tiles.lif",
                first_image(t_dim, r"\1" + extra_tiles.format(n=10**8, inc=1024)),
            ),
        ),
        "lif_50000_channels": (
            "list_series",
            patch_lif_header(
                small_lif, tmp / "channels.lif", first_image(channel, r"\1" * 49_999)
            ),
        ),
        "lif_1e6_timepoints": (
            "open",
            patch_lif_header(
                small_lif,
                tmp / "timepoints.lif",
                first_image(
                    r'DimID="4" NumberOfElements="2"', 'DimID="4" NumberOfElements="1000000"'
                ),
            ),
        ),
        "lif_xy_2e31": (
            "open",
            patch_lif_header(
                small_lif,
                tmp / "xy.lif",
                lambda xml: re.sub(
                    r'DimID="([12])" NumberOfElements="8"',
                    r'DimID="\1" NumberOfElements="2147483647"',
                    xml,
                    count=2,
                ),
            ),
        ),
        "mrc_cut_to_32k": ("open", tmp / "cut.map"),
        "tiff_width_flipped": ("open", tmp / "wide.tif"),
        "fifo_fake": ("open", tmp / "pipe.fake"),
    }
    (tmp / "cut.map").write_bytes((DATA / "mrc" / "EMD-3001.map").read_bytes()[: 32 * 1024])
    wide = bytearray((DATA / "tiff" / "P1_T0.tif").read_bytes())  # 256 x 256 uint16
    assert struct.unpack_from("<HHII", wide, 10) == (256, 4, 1, 256)  # IFD 0's ImageWidth
    wide[10 + 8 + 2] = 0x15  # one byte of the width: 256 -> 1 376 512
    (tmp / "wide.tif").write_bytes(wide)
    os.mkfifo(tmp / "pipe.fake")
    cases["czi_billion_laughs"] = (
        "open",
        czi_with_metadata(
            DATA / "czi" / "100x100.czi",
            tmp / "laughs.czi",
            lambda xml: (
                '<?xml version="1.0"?>'
                + BILLION_LAUGHS.replace("OME", "ImageDocument")
                + xml.replace("<Document>", "<Document><Name>&l9;</Name>", 1)
            ),
        ),
    )
    for name, options in {"bigtiff": {"bigtiff": True}, "big_endian": {"byteorder": ">"}}.items():
        cases[f"ifd_loop_{name}"] = ("open", looped_tiff(tmp / f"{name}.tif", options))
    reports = open_in_child(list(cases.values()))
    return {name: {**reports[str(path)], "path": str(path)} for name, (_, path) in cases.items()}


@requires_data
@requires_make_lif
def test_tiff_whose_ifd_points_to_itself_is_refused_not_read_forever(hang_reports):
    # Before: Bio-Formats followed the chain for ever (Java heap exhausted after ~50 s).
    assert_refused(
        hang_reports["ifd_self_loop"],
        bfdask.CorruptFileError,
        r"self\.tif",
        r"after IFD 0 .*leads back to IFD 0",
    )


@requires_data
@requires_make_lif
def test_tiff_whose_ifd_chain_loops_mid_chain_is_refused(hang_reports):
    assert_refused(
        hang_reports["ifd_loop_mid_chain"],
        bfdask.CorruptFileError,
        r"mid\.tif",
        r"after IFD 20 .*leads back to IFD 5 ",
    )


@requires_data
@requires_make_lif
def test_billion_laughs_ome_xml_fails_fast(hang_reports):
    # Before: Bio-Formats' bundled Xerces expanded 10^9 entities (never answered).
    assert_refused(
        hang_reports["billion_laughs"],
        bfdask.UnsupportedFormatError,
        r"laughs\.ome\.tif",
        "declares a DTD/entities; bfdask does not resolve them",
    )


@requires_data
@requires_make_lif
def test_lif_claiming_1e8_tiles_is_refused(hang_reports):
    assert_refused(
        hang_reports["lif_1e8_tiles"],
        bfdask.CorruptFileError,
        r"tiles\.lif",
        r"'Pos001' claims .*tiles 100000000",
        r"memory block 'MemBlock_\d+' holds 1024 bytes",
    )


@requires_data
@requires_make_lif
def test_lif_claiming_50000_channels_is_refused(hang_reports):
    assert_refused(
        hang_reports["lif_50000_channels"],
        bfdask.CorruptFileError,
        r"channels\.lif",
        "50000 channel",
    )


@requires_data
@requires_make_lif
def test_lif_claiming_1e6_timepoints_is_refused(hang_reports):
    # Before: listed in ~13 s, then minutes building the series' OME-XML (or Java's heap).
    assert_refused(
        hang_reports["lif_1e6_timepoints"],
        bfdask.CorruptFileError,
        r"timepoints\.lif",
        "T 1000000",
    )


@requires_data
@requires_make_lif
def test_lif_with_x_and_y_of_2e31_is_refused(hang_reports):
    assert_refused(
        hang_reports["lif_xy_2e31"],
        bfdask.CorruptFileError,
        r"xy\.lif",
        "X 2147483647 x Y 2147483647",
    )


@requires_data
@requires_make_lif
def test_named_pipe_called_fake_is_refused_without_opening_it(hang_reports):
    # Before: Bio-Formats opened the FIFO and waited for a writer for ever.
    assert_refused(
        hang_reports["fifo_fake"],
        bfdask.UnsupportedFormatError,
        r"pipe\.fake",
        r"named pipe \(FIFO\), not a regular file",
    )


@requires_data
@requires_make_lif
def test_billion_laughs_where_only_java_parses_fails_fast(hang_reports):
    """CZI metadata is XML that only Bio-Formats parses: the JVM's settings must stop the
    expansion (before: never answered)."""
    report = hang_reports["czi_billion_laughs"]
    assert not report["hung"] and report["seconds"] < ANSWER_WITHIN, report
    if "error" in report:
        assert "BfdaskError" in report["error"], report
    else:
        assert "lollollol" not in report["result"], report
    assert report["good_after"], report


# -- defect 8: sizes that cannot be in the file ---------------------------------------------


@requires_data
@requires_make_lif
def test_mrc_cut_to_32_kib_is_refused_before_anything_large_is_built(hang_reports):
    # Before: Bio-Formats reads the cut header big-endian (~10^9 x 10^9 x 10^9) and the
    # open never returned (or died of a bare MemoryError building one chunk per plane).
    assert_refused(
        hang_reports["mrc_cut_to_32k"],
        bfdask.CorruptFileError,
        r"cut\.map",
        r"419430400 planes, and every plane takes at least one byte",
        r"file\(s\) hold 32768 bytes",
        r"MRC header.* 73 x 43 x 25 of mode 2",
    )


@requires_data
@requires_make_lif
def test_tiff_made_1_4_million_pixels_wide_by_one_byte_is_refused(hang_reports):
    # Before: it opened as 256 x 1 376 512 (a 700 MB plane from a 133 KB file).
    assert_refused(
        hang_reports["tiff_width_flipped"],
        bfdask.CorruptFileError,
        r"wide\.tif",
        r"1376512 x 256 pixels",
        r"strips hold 131072 bytes",
    )


@requires_data
@requires_make_lif
def test_lif_cut_short_in_its_last_block_is_not_refused_but_absurd_blocks_are(tmp_path):
    """Refusing claims must not refuse a copy still running: a LIF cut in its last memory
    block opens (the missing planes are the reader's to report); a block claiming far more
    than the file is refused."""
    whole = tmp_path / "whole.lif"
    sizes = ["--series", "1", "--t", "40", "--z", "1", "--c", "1", "--y", "256", "--x", "256"]
    subprocess.run([sys.executable, str(MAKE_LIF), str(whole), *sizes, "--quiet"], check=True)
    raw = whole.read_bytes()
    cut = tmp_path / "cut.lif"
    cut.write_bytes(raw[: len(raw) * 3 // 4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reader's warning about the missing planes
        assert bfdask.open(cut).shape == (40, 1, 1, 256, 256)
    # The block's declared size patched to 2^40: the image's claims fit it, not the file.
    absurd = tmp_path / "absurd.lif"
    patched = bytearray(raw)
    struct.pack_into("<Q", patched, lif_block_headers(raw)[-1] + 9, 1 << 40)
    absurd.write_bytes(patched)
    with pytest.raises(bfdask.CorruptFileError, match=r"absurd\.lif.*more than twice the file"):
        bfdask.list_series(absurd)
    still_reads_a_good_file()


# -- defect 5: external entities ------------------------------------------------------------


@requires_data
def test_ome_tiff_with_external_entity_never_shows_the_local_file(tmp_path):
    # Before: the secret file's text came back in attrs["ome_xml"] (and the OME-Zarr).
    secret = secret_file(tmp_path)
    path = ome_tiff_with_doctype(tmp_path / "xxe.ome.tif", external_entity(secret), "&x;")
    with pytest.raises(bfdask.UnsupportedFormatError) as caught:
        bfdask.open(path)
    message = str(caught.value)
    assert "xxe.ome.tif" in message and "declares a DTD/entities" in message
    assert SECRET not in message
    with pytest.raises(bfdask.UnsupportedFormatError, match="declares a DTD"):
        bfdask.list_series(path)
    still_reads_a_good_file()


@requires_data
def test_companion_ome_with_external_entity_is_refused(tmp_path):
    folder = DATA / "ome-tiff" / "ometiffjl_companion"
    for tiff in folder.glob("*.ome.tiff"):
        (tmp_path / tiff.name).write_bytes(tiff.read_bytes())
    secret = secret_file(tmp_path)
    xml = (folder / "multifile.companion.ome").read_text()
    root = xml.index("<OME")
    xml = xml[:root] + external_entity(secret) + xml[root:]
    xml = re.sub(r"(<Image [^>]*>)", r"\1<Description>&x;</Description>", xml, count=1)
    companion = tmp_path / "multifile.companion.ome"
    companion.write_text(xml)
    with pytest.raises(bfdask.UnsupportedFormatError, match=r"companion\.ome.*declares a DTD"):
        bfdask.open(companion)
    still_reads_a_good_file()


def czi_with_metadata(source: Path, path: Path, change: Callable[[str], str]) -> Path:
    """``source`` with its metadata segment marked deleted and a changed copy appended (the
    file header's MetadataPosition points at it)."""
    raw = bytearray(source.read_bytes())
    (position,) = struct.unpack_from("<q", raw, 32 + 60)
    assert raw[position : position + 14] == b"ZISRAWMETADATA"
    (size,) = struct.unpack_from("<i", raw, position + 32)
    xml = change(raw[position + 288 : position + 288 + size].decode())
    data = xml.encode()
    used = 256 + len(data)
    allocated = -(-used // 32) * 32
    segment = b"ZISRAWMETADATA".ljust(16, b"\0") + struct.pack("<qq", allocated, used)
    segment += struct.pack("<ii", len(data), 0).ljust(256, b"\0") + data
    raw[position : position + 16] = b"DELETED".ljust(16, b"\0")
    struct.pack_into("<q", raw, 32 + 60, len(raw))
    path.write_bytes(bytes(raw) + segment.ljust(32 + allocated, b"\0"))
    return path


@requires_data
def test_java_parsers_resolve_no_entity_where_python_does_not_look(tmp_path):
    """CZI metadata is XML that only Bio-Formats parses: the JVM's own settings must keep
    the entity out (before: the secret became the series name)."""
    secret = secret_file(tmp_path)

    def inject(xml: str) -> str:
        doctype = '<?xml version="1.0"?>' + external_entity(secret, "ImageDocument")
        return doctype + xml.replace("<Document>", "<Document><Name>&x;</Name>", 1)

    path = czi_with_metadata(DATA / "czi" / "100x100.czi", tmp_path / "xxe.czi", inject)
    try:
        data = bfdask.open(path)
    except bfdask.UnsupportedFormatError as exc:
        assert SECRET not in str(exc)
    else:
        assert SECRET not in repr(data.attrs)
    # The same change without the entity reads: only the DTD is refused.
    clean = czi_with_metadata(
        DATA / "czi" / "100x100.czi",
        tmp_path / "clean.czi",
        lambda xml: xml.replace("<Document>", "<Document><Name>plain</Name>", 1),
    )
    assert bfdask.open(clean).attrs["series_name"].startswith("plain")
    still_reads_a_good_file()


# -- defect 10: paths that cannot be opened -------------------------------------------------


def test_symlink_loop_says_so(tmp_path):
    # Before: "No such file", which sends the user looking for a missing file.
    (tmp_path / "a.tif").symlink_to(tmp_path / "b.tif")
    (tmp_path / "b.tif").symlink_to(tmp_path / "a.tif")
    with pytest.raises(bfdask.BfdaskError, match=r"a\.tif.*symlink loop"):
        bfdask.open(tmp_path / "a.tif")
    with pytest.raises(FileNotFoundError, match="symlink loop"):
        bfdask.list_series(tmp_path / "a.tif")


def test_path_component_over_255_bytes_is_a_bfdask_error(tmp_path):
    # Before: a plain OSError (ENAMETOOLONG) from pathlib, naming nothing.
    path = tmp_path / ("x" * 300 + ".tif")
    with pytest.raises(bfdask.BfdaskError, match=r"name is too long.*304 bytes") as caught:
        bfdask.open(path)
    assert isinstance(caught.value, OSError)
    assert path.name in str(caught.value)


def test_socket_is_refused(tmp_path):
    path = tmp_path / "s.tif"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(bfdask.UnsupportedFormatError, match=r"s\.tif' is a socket"):
            bfdask.open(path)


@requires_data
@requires_make_lif
@pytest.mark.parametrize("name", ["bigtiff", "big_endian"])
def test_ifd_loop_is_found_in_bigtiff_and_big_endian_files(hang_reports, name, tmp_path):
    assert_refused(
        hang_reports[f"ifd_loop_{name}"],
        bfdask.CorruptFileError,
        rf"{name}\.tif",
        r"after IFD 2 .*leads back to IFD 1 ",
    )
    # the same file with its chain intact opens (in this process: it cannot hang)
    intact = Path(hang_reports[f"ifd_loop_{name}"]["path"]).with_name(f"intact-{name}.tif")
    assert bfdask.open(intact).shape[:1] == (3,)

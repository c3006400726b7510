"""Hash-verified downloads of the pretrained weights the metrics use, into the torch hub cache.

One place fetches a *pinned* file: its URL, its SHA-256 (the whole digest or, where only that is
published, a prefix of it) and, when known, its size in bytes. ``fetch`` streams the file into a
temporary ``<file>.<random>.part`` next to its destination, hashes it while it arrives, and only when
the length and the hash are right renames it, atomically, onto the destination. On any failure the
partial file is deleted and :class:`WeightsDownloadError` says which file, from where, which hash
was expected and which one arrived: nothing half-written is ever left in the cache, and a wrong file
is never used.

The pinned files (``PINNED``), all stored under their upstream file names in
``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, where torchvision, pytorch-fid
and lpips look too):

- ``pt_inception-2015-12-05-6726825d.pth``: the FID Inception of pytorch-fid (its GitHub release
  ``fid_weights``), full SHA-256 and size pinned. Neither pytorch-fid nor torch-fidelity publishes
  the full digest (their code downloads without a check; the file names carry its first 8 hex
  digits, ``6726825d``). The full digest and size are those recorded, independently and in
  agreement, by several public projects that hashed the file they downloaded (from pytorch-fid's
  and from torch-fidelity's release, which hold the same bytes): 95,628,359 bytes, SHA-256
  ``6726825d0af5...b2``; its first 8 digits agree with the upstream file name.
- ``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``, ``squeezenet1_1-b8a52dc0.pth``: torchvision's
  ImageNet weights of LPIPS's backbones (``AlexNet_Weights``, ``VGG16_Weights``,
  ``SqueezeNet1_1_Weights.IMAGENET1K_V1``). torchvision publishes only the first 8 hex digits of
  each file's SHA-256 (in its file name), so only that prefix is verified, exactly as
  ``torch.hub.load_state_dict_from_url(check_hash=True)`` does; no full digest is invented. A prefix
  of 32 bits still refuses a truncated or corrupted download (a wrong file passes with probability
  2^-32), but it is no protection against a deliberately forged file.

Mirror: set ``COURSE_WEIGHTS_MIRROR`` to a base URL (``https://host/weights``, ``http://127.0.0.1:8000``,
a ``file:///folder``) to fetch every pinned file from ``<mirror>/<file name>`` instead of its upstream
URL, e.g. from a folder served with ``python -m http.server``; the pinned hash is checked all the
same. The ``mirror=`` argument of ``fetch``/``ensure``/``try_ensure`` does the same for one call.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

MIRROR_ENV = "COURSE_WEIGHTS_MIRROR"
DEFAULT_TIMEOUT = 60.0  # seconds without any progress (connecting or between two reads) before giving up
CHUNK = 1 << 20
_HEX = re.compile(r"[0-9a-f]{8,64}")


def _check_hash(sha256: str) -> str:
    if not isinstance(sha256, str) or not _HEX.fullmatch(sha256):
        raise ValueError(f"sha256 must be 8 to 64 lower-case hex digits (a SHA-256 or a prefix of it), "
                         f"got {sha256!r}")
    return sha256


def _file_name(url: str) -> str:
    name = Path(urllib.parse.urlsplit(url).path).name
    if not name:
        raise ValueError(f"cannot tell a file name from the URL {url!r}")
    return name


class WeightsDownloadError(OSError):
    """A pinned file could not be downloaded, or what arrived was refused (wrong hash, truncated).

    The message names the file, the URL, the expected hash and, when bytes arrived, the hash and the
    length that were received. An ``OSError``, like the ``URLError`` it often wraps.
    """


@dataclass(frozen=True)
class PinnedFile:
    """A file that may be downloaded only if it hashes to ``sha256``.

    Attributes:
        url: where it is published.
        sha256: lower-case hex SHA-256, all 64 digits, or a prefix of at least 8 when only that is
            published (``full_hash`` tells which).
        size: its length in bytes, or None if unknown (then only the hash and the HTTP
            ``Content-Length`` guard against truncation).
        source: where the hash (and size) come from.
    """

    url: str
    sha256: str
    size: int | None = None
    source: str = ""

    def __post_init__(self):
        _check_hash(self.sha256)
        if self.size is not None and (not isinstance(self.size, int) or self.size < 0):
            raise ValueError(f"size must be a non-negative int or None, got {self.size!r}")

    @property
    def file_name(self) -> str:
        """The last component of the URL's path: the name in the cache."""
        return _file_name(self.url)

    @property
    def full_hash(self) -> bool:
        """True when all 64 hex digits are pinned, False when only a prefix is."""
        return len(self.sha256) == 64


FID_INCEPTION = "pt_inception-2015-12-05-6726825d.pth"
_TV = "https://download.pytorch.org/models/"
_TV_SOURCE = ("torchvision publishes only this 8-digit prefix of the SHA-256, in the file name of "
              "torchvision.models.{}.url; the prefix is verified as torch.hub's check_hash does")

PINNED: dict[str, PinnedFile] = {
    FID_INCEPTION: PinnedFile(
        url=f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_INCEPTION}",
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        size=95_628_359,
        source="pytorch-fid's release file; upstream publishes the prefix 6726825d (file name) only. Full "
               "SHA-256 and size as recorded, in agreement, by several public projects that hashed the "
               "downloaded file (pytorch-fid's and torch-fidelity's identical release files)"),
    "alexnet-owt-7be5be79.pth": PinnedFile(
        url=_TV + "alexnet-owt-7be5be79.pth", sha256="7be5be79",
        source=_TV_SOURCE.format("AlexNet_Weights.IMAGENET1K_V1")),
    "vgg16-397923af.pth": PinnedFile(
        url=_TV + "vgg16-397923af.pth", sha256="397923af",
        source=_TV_SOURCE.format("VGG16_Weights.IMAGENET1K_V1")),
    "squeezenet1_1-b8a52dc0.pth": PinnedFile(
        url=_TV + "squeezenet1_1-b8a52dc0.pth", sha256="b8a52dc0",
        source=_TV_SOURCE.format("SqueezeNet1_1_Weights.IMAGENET1K_V1")),
}


def cache_dir() -> Path:
    """The folder of downloaded weights: ``torch.hub.get_dir()/checkpoints``.

    It follows ``torch.hub.set_dir`` and ``$TORCH_HOME`` (default ``~/.cache/torch``), as torchvision,
    pytorch-fid and lpips do, so a file any of them downloaded is found here and vice versa.

    Example:
        >>> cache_dir().name
        'checkpoints'
    """
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Where the pinned file ``name`` lives in the cache (it may not exist).

    Args:
        name: a key of ``PINNED``.
        directory: the cache folder; default ``cache_dir()``.

    Raises:
        KeyError: for a name not in ``PINNED``; the message lists the known names.

    Example:
        >>> cached_path("vgg16-397923af.pth").relative_to(cache_dir()).as_posix()
        'vgg16-397923af.pth'
    """
    return (cache_dir() if directory is None else Path(directory)) / _pinned(name).file_name


def _pinned(name: str) -> PinnedFile:
    try:
        return PINNED[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a pinned file; known: {sorted(PINNED)}") from None


def mirror_url(url: str, mirror: str | None = None) -> str:
    """The URL to fetch: ``url`` itself, or ``<mirror>/<file name>`` when a mirror is set.

    Args:
        url: the upstream URL.
        mirror: a base URL; default ``$COURSE_WEIGHTS_MIRROR`` (unset or empty: no mirror).

    Returns:
        The URL to download from.

    Example:
        >>> mirror_url("https://download.pytorch.org/models/vgg16-397923af.pth", "http://127.0.0.1:8000/w/")
        'http://127.0.0.1:8000/w/vgg16-397923af.pth'
    """
    mirror = os.environ.get(MIRROR_ENV, "") if mirror is None else mirror
    if not mirror.strip():
        return url
    return mirror.strip().rstrip("/") + "/" + urllib.parse.quote(_file_name(url))


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in chunks, as 64 lower-case hex digits.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = Path(d) / "empty.bin"; _ = p.write_bytes(b"")
        ...     sha256_file(p)
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _expected(sha256: str) -> str:
    return f"sha256 {sha256}" + ("" if len(sha256) == 64 else f" (prefix of {len(sha256)} digits)")


def fetch(name_or_url: str, sha256_or_prefix: str | None = None, dest: str | os.PathLike | None = None, *,
          size: int | None = None, progress: bool = False, timeout: float = DEFAULT_TIMEOUT,
          mirror: str | None = None) -> Path:
    """Download a file, verify its length and SHA-256 while it streams, then move it atomically onto ``dest``.

    The bytes go to ``<dest>.<random hex>.part`` in ``dest``'s folder. When the server closes the
    connection before its ``Content-Length`` (or before the pinned ``size``), or the digest differs
    from ``sha256_or_prefix`` (all of it, or its first digits for a prefix), the partial file is
    deleted and nothing is written to ``dest``. An existing ``dest`` is replaced only by a verified
    file.

    Args:
        name_or_url: a key of ``PINNED`` (its URL, hash and size are used), or a URL.
        sha256_or_prefix: the expected SHA-256, 64 hex digits, or a prefix of at least 8; required for a
            URL, default the pinned one for a name (given for a name, it must equal the pinned one).
        dest: where to put the file; default ``cache_dir() / <file name>``.
        size: the expected length in bytes (default: the pinned size for a name, else unchecked).
        progress: show a progress bar (``course_lib.runtime.tqdm``).
        timeout: seconds to wait for the connection or for the next bytes.
        mirror: fetch from ``<mirror>/<file name>``; default ``$COURSE_WEIGHTS_MIRROR`` (see the module).

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        WeightsDownloadError: the server could not be reached, answered with an HTTP error, sent fewer
            bytes than announced or pinned, or sent a file with another hash. The message names the
            file, the URL and the expected hash (and the received one).
        ValueError: for a malformed hash or size, or a hash that contradicts the pinned one.
        KeyError: for a name that is neither pinned nor a URL.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     src = Path(d) / "w.bin"; _ = src.write_bytes(b"weights")
        ...     good = hashlib.sha256(b"weights").hexdigest()
        ...     fetch(src.as_uri(), good, Path(d) / "cache" / "w.bin").read_bytes()
        b'weights'
        >>> with tempfile.TemporaryDirectory() as d:
        ...     src = Path(d) / "w.bin"; _ = src.write_bytes(b"tampered")
        ...     fetch(src.as_uri(), good[:8], Path(d) / "w2.bin")
        Traceback (most recent call last):
        course_lib.downloads.WeightsDownloadError: refused w.bin ...: expected sha256 ... (prefix of 8 digits), got ...
    """
    if "://" in name_or_url:
        url = name_or_url
        if sha256_or_prefix is None:
            raise ValueError(f"fetching a URL needs its sha256 (or an 8+ digit prefix of it): {url}")
        expected = _check_hash(sha256_or_prefix.lower())
    else:
        pinned = _pinned(name_or_url)
        url, expected = pinned.url, pinned.sha256
        if sha256_or_prefix is not None and sha256_or_prefix.lower() != expected:
            raise ValueError(f"sha256 {sha256_or_prefix!r} differs from the pinned {expected} of {name_or_url}")
        size = pinned.size if size is None else size
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValueError(f"size must be a non-negative int or None, got {size!r}")
    file_name = _file_name(url)
    dest = cache_dir() / file_name if dest is None else Path(dest)
    source = mirror_url(url, mirror)
    what = f"{file_name} from {source}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.parent / f"{dest.name}.{uuid.uuid4().hex}.part"
    try:
        with open(part, "xb") as out:  # "x": never clobbers a file; umask permissions, unlike mkstemp
            received, digest, announced = _stream(source, out, what, expected, size, progress, timeout)
        got = f"got sha256 {digest} ({received} bytes)"
        if announced is not None and received != announced:
            raise WeightsDownloadError(f"refused {what}: truncated, {received} of the {announced} bytes the "
                                       f"server announced arrived; expected {_expected(expected)}, {got}")
        if size is not None and received != size:
            raise WeightsDownloadError(f"refused {what}: {received} bytes instead of the pinned {size}; "
                                       f"expected {_expected(expected)}, {got}")
        if not digest.startswith(expected):
            raise WeightsDownloadError(f"refused {what}: expected {_expected(expected)}, {got}")
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def _stream(source, out, what, expected, size, progress, timeout):
    request = urllib.request.Request(source, headers={"User-Agent": "course_lib"})
    digest, received = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            announced = int(length) if length and length.strip().isdigit() else None
            from course_lib.runtime import tqdm

            with tqdm(total=announced or size, disable=not progress, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=_file_name(source)) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise WeightsDownloadError(f"could not download {what}: HTTP {err.code} {err.reason} "
                                   f"(expected {_expected(expected)})") from err
    except urllib.error.URLError as err:
        raise WeightsDownloadError(f"could not download {what}: {err.reason} "
                                   f"(expected {_expected(expected)})") from err
    except (OSError, http.client.HTTPException) as err:  # reset connection, timeout, IncompleteRead
        raise WeightsDownloadError(f"could not download {what}: {type(err).__name__}: {err} after "
                                   f"{received} bytes (expected {_expected(expected)})") from err
    return received, digest.hexdigest(), announced


def verify(path: str | os.PathLike, sha256_or_prefix: str, size: int | None = None) -> str:
    """Check a file on disk against a SHA-256 (or a prefix) and optionally a size; return its digest.

    Raises:
        WeightsDownloadError: when the size or the hash differs; the message names the file and both
            hashes. The file is left in place (it may be yours): delete it to download it again.
        FileNotFoundError: if ``path`` does not exist.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = Path(d) / "w.bin"; _ = p.write_bytes(b"")
        ...     verify(p, "e3b0c442")[:16]
        'e3b0c44298fc1c14'
    """
    path = Path(path)
    expected = _check_hash(sha256_or_prefix.lower())
    actual_size = path.stat().st_size
    digest = sha256_file(path)
    got = f"got sha256 {digest} ({actual_size} bytes)"
    if size is not None and actual_size != size:
        raise WeightsDownloadError(f"{path} has {actual_size} bytes instead of {size}: expected "
                                   f"{_expected(expected)}, {got}; delete it to download it again")
    if not digest.startswith(expected):
        raise WeightsDownloadError(f"{path} does not match: expected {_expected(expected)}, {got}; "
                                   "delete it to download it again")
    return digest


def ensure(name: str, *, check: bool = False, directory: str | os.PathLike | None = None, progress: bool = False,
           timeout: float = DEFAULT_TIMEOUT, mirror: str | None = None) -> Path:
    """The cached path of the pinned file ``name``, downloaded (and verified) first if it is missing.

    Args:
        name: a key of ``PINNED`` (the upstream file name).
        check: also verify a file that is already cached (hashes it: about a second per 500 MB). By
            default a cached file is trusted, as torchvision and torch.hub do, so a file you placed
            there yourself is used as is.
        directory: the cache folder; default ``cache_dir()`` (the torch hub cache).
        progress, timeout, mirror: as in :func:`fetch`.

    Returns:
        ``cached_path(name, directory)``, which now exists.

    Raises:
        WeightsDownloadError: the download failed or was refused, or (``check=True``) the cached file
            does not match; the message names the file and the expected hash.
        KeyError: for a name not in ``PINNED``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:  # a cached file is returned, nothing is downloaded
        ...     _ = (Path(d) / "vgg16-397923af.pth").write_bytes(b"not checked")
        ...     ensure("vgg16-397923af.pth", directory=d).name
        'vgg16-397923af.pth'
    """
    pinned = _pinned(name)
    path = cached_path(name, directory)
    if path.is_file():
        if check:
            verify(path, pinned.sha256, pinned.size)
        return path
    return fetch(name, dest=path, progress=progress, timeout=timeout, mirror=mirror)


def try_ensure(name: str, *, check: bool = False, directory: str | os.PathLike | None = None,
               progress: bool = False, timeout: float = DEFAULT_TIMEOUT,
               mirror: str | None = None) -> tuple[Path | None, str]:
    """Like :func:`ensure`, but quiet: ``(path, how)`` when the file is available, ``(None, why)`` when not.

    For notebooks that compute the real metric when they can and otherwise say in one line why not:
    no exception, no traceback, no log output (a progress bar only if ``progress``).

    Args:
        name: a key of ``PINNED``.
        check, directory, progress, timeout, mirror: as in :func:`ensure`.

    Returns:
        ``(cached path, "cached at ...")`` or ``(cached path, "downloaded ... (sha256 ... verified)")``;
        ``(None, reason)`` when offline or the download was refused: one line naming the file, the
        cause, and how to get the file (copy it into the cache, or set ``COURSE_WEIGHTS_MIRROR``).

    Raises:
        KeyError: for a name not in ``PINNED`` (a programming error, not an offline machine).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:  # a mirror with nothing in it: as good as offline
        ...     path, why = try_ensure("alexnet-owt-7be5be79.pth", directory=d, mirror=Path(d).as_uri())
        >>> path is None, why.startswith("alexnet-owt-7be5be79.pth is not available"), "\\n" in why
        (True, True, False)
    """
    pinned = _pinned(name)
    path = cached_path(name, directory)
    cached = path.is_file()
    try:
        path = ensure(name, check=check, directory=directory, progress=progress, timeout=timeout, mirror=mirror)
    except WeightsDownloadError as err:
        reason = " ".join(str(err).split())
        return None, (f"{name} is not available ({reason}). Copy it from {pinned.url} into {path.parent}, "
                      f"or set {MIRROR_ENV} to a folder or server that holds it.")
    if cached:
        return path, f"{name} cached at {path}" + (" (sha256 verified)" if check else "")
    which = "sha256" if pinned.full_hash else f"sha256 prefix {pinned.sha256}"
    return path, f"{name} downloaded to {path} ({which} verified)"


__all__ = ["PINNED", "PinnedFile", "WeightsDownloadError", "MIRROR_ENV", "FID_INCEPTION", "cache_dir",
           "cached_path", "mirror_url", "sha256_file", "fetch", "verify", "ensure", "try_ensure"]

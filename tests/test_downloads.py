"""course_lib.downloads: hash-verified downloads into the torch hub cache, tested against a loopback server.

Nothing here touches the internet: files are served by ``http.server`` on 127.0.0.1 from memory, their
SHA-256 is computed here with hashlib, and a guard makes any request to another host fail the test.
"""

import hashlib
import http.server
import io
import os
import socket
import threading
import urllib.parse
import urllib.request

import pytest
import torch
import torchvision

from course_lib import downloads
from course_lib import inception as F
from course_lib import lpips as L
from course_lib.downloads import PINNED, PinnedFile, WeightsDownloadError

pytestmark = pytest.mark.usefixtures("one_thread")


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files[name] = (body, mode)`` at ``/name``; mode "ok" or "truncate" (closes half-way)."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        name = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path.lstrip("/"))
        self.server.requests.append(name)
        if name not in self.server.files:
            self.send_error(404, "Not Found")
            return
        body, mode = self.server.files[name]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))  # the full length, also when truncating
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if mode == "truncate" else body)
        self.close_connection = True  # HTTP/1.0: the connection closes after the (partial) body

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests = {}, []
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def served(server):
    server.files.clear()
    server.requests.clear()
    return server


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch, tmp_path):
    """A temporary torch hub cache, no mirror from the environment, and no request beyond 127.0.0.1."""
    real_urlopen = urllib.request.urlopen

    def guarded(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "file" and parts.hostname != "127.0.0.1":
            raise AssertionError(f"a test tried to reach {url}")
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)
    monkeypatch.delenv(downloads.MIRROR_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    # torch.hub.set_dir's global, restored afterwards to its previous (normally unset) state
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch_home" / "hub"))
    yield


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pin(monkeypatch, name, url, data_or_hash, size=None):
    digest = data_or_hash if isinstance(data_or_hash, str) else sha256(data_or_hash)
    monkeypatch.setitem(PINNED, name, PinnedFile(url=url, sha256=digest, size=size))


def cache_listing():
    folder = downloads.cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def payload():
    return os.urandom(300_000)  # several 64 KiB socket reads, less than one CHUNK


# ------------------------------------------------------------------------------------- pinned registry


def test_pinned_entries_agree_with_upstream_names_and_urls():
    from pytorch_fid.inception import FID_WEIGHTS_URL as PYTORCH_FID_URL

    assert F.FID_WEIGHTS_URL == PYTORCH_FID_URL and F.FID_WEIGHTS_FILE in PINNED
    fid_entry = PINNED[F.FID_WEIGHTS_FILE]
    assert fid_entry.full_hash and fid_entry.size == 95_628_359
    for net, spec in L.BACKBONES.items():
        entry = PINNED[spec.file_name]
        assert entry.url == torchvision.models.get_weight(spec.weights).url, net
        assert not entry.full_hash and len(entry.sha256) == 8  # only the published prefix
    for name, entry in PINNED.items():
        # upstream file names end in the first 8 hex digits of the file's SHA-256 (torch.hub's convention)
        assert entry.file_name == name and name.rsplit("-", 1)[1].split(".")[0] == entry.sha256[:8]
        assert entry.source


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="hex digits"):
        PinnedFile(url="http://127.0.0.1/x.bin", sha256="XYZ")
    with pytest.raises(ValueError, match="hex digits"):
        downloads.fetch("http://127.0.0.1:1/x.bin", "abc")  # shorter than 8 digits: not a usable pin
    with pytest.raises(ValueError, match="needs its sha256"):
        downloads.fetch("http://127.0.0.1:1/x.bin")
    with pytest.raises(KeyError, match="not a pinned file"):
        downloads.ensure("resnet50.pth")
    with pytest.raises(ValueError, match="differs from the pinned"):
        downloads.fetch("vgg16-397923af.pth", "00000000")
    assert cache_listing() == []


def test_mirror_url_from_argument_and_environment(monkeypatch):
    url = PINNED["vgg16-397923af.pth"].url
    assert downloads.mirror_url(url) == url
    assert downloads.mirror_url(url, "http://127.0.0.1:9/a/") == "http://127.0.0.1:9/a/vgg16-397923af.pth"
    monkeypatch.setenv(downloads.MIRROR_ENV, "file:///srv/weights")
    assert downloads.mirror_url(url) == "file:///srv/weights/vgg16-397923af.pth"
    assert downloads.mirror_url(url, "") == url  # an explicit empty mirror overrides the environment


# ---------------------------------------------------------------------------------------- the download


def test_good_file_is_accepted_into_the_cache(served, payload, monkeypatch):
    served.files["good.bin"] = (payload, "ok")
    pin(monkeypatch, "good.bin", f"{served.base}/good.bin", payload, size=len(payload))
    path = downloads.ensure("good.bin")
    assert path == downloads.cache_dir() / "good.bin" == downloads.cached_path("good.bin")
    assert path.parent == downloads.cache_dir() and str(path).startswith(str(torch.hub.get_dir()))
    assert path.read_bytes() == payload and cache_listing() == ["good.bin"]  # no .part left behind
    assert downloads.verify(path, sha256(payload), len(payload)) == sha256(payload)


def test_a_prefix_pin_accepts_the_right_file(served, payload, monkeypatch):
    served.files["prefix.bin"] = (payload, "ok")
    pin(monkeypatch, "prefix.bin", f"{served.base}/prefix.bin", sha256(payload)[:8])
    assert downloads.ensure("prefix.bin").read_bytes() == payload


def test_mirror_environment_variable_redirects_a_pinned_url(served, payload, monkeypatch):
    served.files["mirrored.bin"] = (payload, "ok")
    pin(monkeypatch, "mirrored.bin", "https://upstream.invalid/releases/mirrored.bin", payload)
    monkeypatch.setenv(downloads.MIRROR_ENV, served.base + "/")
    assert downloads.ensure("mirrored.bin").read_bytes() == payload
    assert served.requests == ["mirrored.bin"]


@pytest.mark.parametrize("full", [True, False])
def test_mismatched_hash_is_refused_and_nothing_is_left(served, payload, monkeypatch, full):
    served.files["tampered.bin"] = (payload, "ok")
    expected = sha256(payload[::-1])  # the hash of other bytes
    expected = expected if full else expected[:8]
    pin(monkeypatch, "tampered.bin", f"{served.base}/tampered.bin", expected)
    with pytest.raises(WeightsDownloadError) as info:
        downloads.ensure("tampered.bin")
    message = str(info.value)
    assert "tampered.bin" in message and f"expected sha256 {expected}" in message
    assert f"got sha256 {sha256(payload)}" in message
    assert cache_listing() == []  # neither the destination nor a .part file
    assert isinstance(info.value, OSError)


def test_a_refused_download_does_not_replace_an_existing_file(served, payload, tmp_path):
    served.files["w.bin"] = (payload, "ok")
    dest = tmp_path / "w.bin"
    dest.write_bytes(b"the old, good file")
    with pytest.raises(WeightsDownloadError, match="expected sha256"):
        downloads.fetch(f"{served.base}/w.bin", sha256(b"something else"), dest)
    assert dest.read_bytes() == b"the old, good file" and sorted(os.listdir(tmp_path)) == ["w.bin"]
    downloads.fetch(f"{served.base}/w.bin", sha256(payload), dest)  # the verified one does replace it
    assert dest.read_bytes() == payload and sorted(os.listdir(tmp_path)) == ["w.bin"]


@pytest.mark.parametrize("size_pinned", [True, False])
def test_truncated_response_is_refused_and_nothing_is_left(served, payload, monkeypatch, size_pinned):
    served.files["cut.bin"] = (payload, "truncate")  # announces len(payload), sends half, closes
    # Even the right hash and size cannot make a truncated transfer pass.
    pin(monkeypatch, "cut.bin", f"{served.base}/cut.bin", payload, size=len(payload) if size_pinned else None)
    with pytest.raises(WeightsDownloadError) as info:
        downloads.ensure("cut.bin")
    message = str(info.value)
    assert "cut.bin" in message and f"sha256 {sha256(payload)}" in message
    assert "truncated" in message or "IncompleteRead" in message
    assert cache_listing() == []


def test_a_shorter_file_than_pinned_is_refused(served, payload, monkeypatch):
    short = payload[:1000]
    served.files["short.bin"] = (short, "ok")  # a complete transfer of the wrong (short) file
    pin(monkeypatch, "short.bin", f"{served.base}/short.bin", payload, size=len(payload))
    with pytest.raises(WeightsDownloadError, match=f"1000 bytes instead of the pinned {len(payload)}") as info:
        downloads.ensure("short.bin")
    assert f"sha256 {sha256(payload)}" in str(info.value) and cache_listing() == []


def test_http_404_is_refused_clearly(served, monkeypatch):
    pin(monkeypatch, "missing.bin", f"{served.base}/missing.bin", "ab" * 32)
    with pytest.raises(WeightsDownloadError, match="HTTP 404") as info:
        downloads.ensure("missing.bin")
    assert "missing.bin" in str(info.value) and "ab" * 32 in str(info.value)
    assert served.requests == ["missing.bin"] and cache_listing() == []


def test_a_cached_file_is_not_downloaded_again(served, payload, monkeypatch):
    served.files["once.bin"] = (payload, "ok")
    pin(monkeypatch, "once.bin", f"{served.base}/once.bin", payload, size=len(payload))
    first = downloads.ensure("once.bin")
    assert downloads.ensure("once.bin") == first and downloads.ensure("once.bin", check=True) == first
    assert served.requests == ["once.bin"]
    # check=True hashes the cached file; by default a cached file is trusted (as torch.hub does)
    first.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))
    assert downloads.ensure("once.bin") == first
    with pytest.raises(WeightsDownloadError, match="delete it to download it again"):
        downloads.ensure("once.bin", check=True)
    assert served.requests == ["once.bin"]


def test_try_ensure_is_quiet_offline_and_says_why_in_one_line(served, payload, monkeypatch, capfd, caplog):
    with socket.socket() as s:  # a port nobody listens on: connection refused, as offline as it gets
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    pin(monkeypatch, "offline.bin", f"{closed}/offline.bin", payload)
    path, why = downloads.try_ensure("offline.bin", progress=False)
    assert path is None and "\n" not in why
    assert why.startswith("offline.bin is not available") and downloads.MIRROR_ENV in why
    assert sha256(payload) in why and str(downloads.cache_dir()) in why
    out, err = capfd.readouterr()
    assert out == "" and err == "" and caplog.records == []
    assert cache_listing() == []
    # and when it can, it says what it did
    served.files["online.bin"] = (payload, "ok")
    pin(monkeypatch, "online.bin", f"{served.base}/online.bin", payload)
    path, why = downloads.try_ensure("online.bin")
    assert path is not None and path.read_bytes() == payload and "downloaded" in why and "verified" in why
    path, why = downloads.try_ensure("online.bin")
    assert path is not None and why.startswith("online.bin cached at")


# ------------------------------------------------------------------ the metrics load through this path


def _random_inception_bytes() -> tuple[bytes, dict]:
    """A state dict of the FID InceptionV3's layers and keys, with random values (fast: no layer init)."""
    net = F.InceptionV3.__new__(F.InceptionV3)  # the architecture without loading any weights
    torch.nn.Module.__init__(net)
    with torch.device("meta"):
        net._build()
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=value.dtype)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=g)
        else:
            state[key] = 0.05 * torch.randn(value.shape, generator=g)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue(), state


def test_inception_v3_downloads_verified_weights_and_gives_features(served, monkeypatch):
    data, state = _random_inception_bytes()
    name = F.FID_WEIGHTS_FILE
    served.files[name] = (data, "ok")
    monkeypatch.setenv(downloads.MIRROR_ENV, served.base)
    # The real pin refuses these random weights: their hash is not pytorch-fid's.
    with pytest.raises(F.InceptionWeightsNotFoundError, match="download failed") as info:
        F.InceptionV3(download=True)
    assert name in str(info.value) and PINNED[name].sha256 in str(info.value)
    assert not F.inception_available() and cache_listing() == []
    # Pinned to their own hash (as a test may), the same path downloads, verifies, caches and loads them.
    pin(monkeypatch, name, F.FID_WEIGHTS_URL, data, size=len(data))
    net = F.InceptionV3(download=True)
    assert F.inception_available() and F.inception_weights_path().read_bytes() == data
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    features = net.features(images)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert served.requests == [name, name]  # the refused download and the accepted one
    assert downloads.ensure(name) == F.inception_weights_path() and served.requests == [name, name]  # cached


def _random_alexnet_bytes() -> tuple[bytes, dict]:
    """torchvision AlexNet with random convolutions; the unused classifier stored as broadcast zeros (small)."""
    torch.manual_seed(0)
    model = torchvision.models.alexnet(weights=None)
    state = {}
    for k, v in model.state_dict().items():
        state[k] = v if k.startswith("features.") else torch.zeros((), dtype=v.dtype).expand(v.shape)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue(), state


def test_lpips_downloads_a_verified_backbone(served, monkeypatch):
    data, state = _random_alexnet_bytes()
    name = L.BACKBONES["alex"].file_name
    served.files[name] = (data, "ok")
    monkeypatch.setenv(downloads.MIRROR_ENV, served.base)
    with pytest.raises(L.BackboneWeightsNotFoundError, match="sha256 7be5be79") as info:
        L.LPIPS("alex", download=True)  # random bytes do not start with torchvision's hash prefix
    assert name in str(info.value) and not L.backbone_available("alex") and cache_listing() == []
    pin(monkeypatch, name, PINNED[name].url, data)
    metric = L.LPIPS("alex", download=True)
    assert L.backbone_path("alex").read_bytes() == data
    assert torch.equal(metric.slices[0][0].weight, state["features.0.weight"])
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        d = metric(x, x.flip(-1))
        assert d.shape == (2,) and bool((d > 0).all()) and float(metric(x, x).abs().max()) == 0.0
    L.LPIPS("alex", download=True)
    assert served.requests == [name, name]  # the refused one and the accepted one; then the cache

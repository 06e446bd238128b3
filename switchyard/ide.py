"""Self-hosted GraphiQL: the pinned browser assets, their fetcher, the page and its file server.

Strawberry's stock GraphiQL page loads React, GraphiQL and the explorer plugin from unpkg and
shows only "Loading..." where the CDN is unreachable. This module pins those seven files by npm
package, version and tarball integrity, downloads them once into a directory
(`switchyard ide fetch`), and renders a page that loads them from the gateway itself::

    from switchyard.ide import (
        DEFAULT_ASSET_DIR, assets_present, ide_asset_app, render_graphiql_page,
    )

    local = assets_present(DEFAULT_ASSET_DIR)
    page = render_graphiql_page(
        graphql_path="/graphql", asset_base="/graphiql/assets" if local else None
    )
    app.mount("/graphiql/assets", ide_asset_app(DEFAULT_ASSET_DIR))
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import importlib.resources
import io
import json
import os
import re
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import httpx
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Scope

from switchyard import compression

DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org"
DEFAULT_CDN = "https://unpkg.com"
DEFAULT_ASSET_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
DEFAULT_FETCH_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_MAX_TARBALL_BYTES = 32 * 1024 * 1024
DEFAULT_ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
DEFAULT_MANIFEST_CACHE_CONTROL = "no-cache"
MANIFEST_NAME = "manifest.json"

_TARBALL_ROOT = "package/"
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}
_FILE_MODE = 0o644


class IdeAssetError(Exception):
    """A GraphiQL asset could not be downloaded, verified, unpacked or written.

    The message is one line naming the package or URL, e.g.
    ``integrity mismatch for react@18.2.0 (https://...): expected sha512-..., got sha512-...``.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class IdeAsset:
    """One file the GraphiQL page loads, as it sits inside its npm tarball.

    `sri` is the file's sha384 Subresource Integrity; unpkg serves the tarball's bytes
    unchanged, so the same value is correct for the CDN and for the local copy.
    """

    path: str
    filename: str
    sri: str

    @property
    def kind(self) -> Literal["script", "stylesheet"]:
        return "stylesheet" if self.filename.endswith(".css") else "script"


@dataclass(frozen=True, slots=True, kw_only=True)
class IdePackage:
    """An npm package version pinned by its tarball's `dist.integrity` (sha512)."""

    name: str
    version: str
    integrity: str
    assets: tuple[IdeAsset, ...]

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    def tarball_url(self, registry: str) -> str:
        """The registry's standard tarball location, ``<registry>/<name>/-/<base>-<ver>.tgz``."""
        base = self.name.rsplit("/", 1)[-1]
        return f"{registry.rstrip('/')}/{self.name}/-/{base}-{self.version}.tgz"

    def cdn_url(self, asset: IdeAsset) -> str:
        return f"{DEFAULT_CDN}/{self.spec}/{asset.path}"


# Same versions as Strawberry's own graphiql.html. Page order: scripts load in this order.
IDE_PACKAGES: tuple[IdePackage, ...] = (
    IdePackage(
        name="react",
        version="18.2.0",
        integrity="sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==",
        assets=(
            IdeAsset(
                path="umd/react.production.min.js",
                filename="react-18.2.0.production.min.js",
                sri="sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
            ),
        ),
    ),
    IdePackage(
        name="react-dom",
        version="18.2.0",
        integrity="sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
        assets=(
            IdeAsset(
                path="umd/react-dom.production.min.js",
                filename="react-dom-18.2.0.production.min.js",
                sri="sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
            ),
        ),
    ),
    IdePackage(
        name="js-cookie",
        version="3.0.5",
        integrity="sha512-cEiJEAEoIbWfCZYKWhVwFuvPX1gETRYPw6LlaTKoxD3s2AkXzkCjnp6h0V77ozyqj0jakteJ4YqDJT830+lVGw==",
        assets=(
            IdeAsset(
                path="dist/js.cookie.min.js",
                filename="js-cookie-3.0.5.min.js",
                sri="sha384-/vxhYfM1LENRhdpZ8dwEsQn/X4VhpbEZSiU4m/FwR+PVpzar4fkEOw8FP9Y+OfQN",
            ),
        ),
    ),
    IdePackage(
        name="graphiql",
        version="3.8.3",
        integrity="sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
        assets=(
            IdeAsset(
                path="graphiql.min.css",
                filename="graphiql-3.8.3.min.css",
                sri="sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
            ),
            IdeAsset(
                path="graphiql.min.js",
                filename="graphiql-3.8.3.min.js",
                sri="sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
            ),
        ),
    ),
    IdePackage(
        name="@graphiql/plugin-explorer",
        version="1.0.2",
        integrity="sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
        assets=(
            IdeAsset(
                path="dist/style.css",
                filename="graphiql-plugin-explorer-1.0.2.css",
                sri="sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
            ),
            IdeAsset(
                path="dist/index.umd.js",
                filename="graphiql-plugin-explorer-1.0.2.umd.js",
                sri="sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
            ),
        ),
    ),
)


async def fetch_ide_assets(
    dest: Path,
    *,
    registry: str = DEFAULT_NPM_REGISTRY,
    client: httpx.AsyncClient | None = None,
) -> list[Path]:
    """Download, verify and install every pinned GraphiQL asset into `dest`.

    Each package's tarball is downloaded once and checked against its pinned sha512 before
    it is opened; each extracted file is checked against its sha384 SRI. Nothing is written
    until every package has passed, then each file and finally `manifest.json` are replaced
    atomically. Returns the asset paths in page order (the manifest is not included).

    Example::

        paths = await fetch_ide_assets(DEFAULT_ASSET_DIR)
        assert assets_present(DEFAULT_ASSET_DIR)

    Raises `IdeAssetError` on a network failure, an integrity mismatch or a write failure.
    """
    packages = IDE_PACKAGES
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=DEFAULT_FETCH_TIMEOUT, follow_redirects=True)
            )
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(_fetch_package(client, package, registry))
                    for package in packages
                ]
        except ExceptionGroup as failures:
            errors = [e for e in failures.exceptions if isinstance(e, IdeAssetError)]
            if len(errors) != len(failures.exceptions):
                raise
            raise errors[0] from errors[0].__cause__
    contents = [task.result() for task in tasks]
    return await asyncio.to_thread(_install, dest, packages, contents)


def assets_present(dest: Path) -> bool:
    """Whether `dest` holds a manifest and every pinned asset, i.e. the local page will work.

    Example::

        base = "/graphiql/assets" if assets_present(DEFAULT_ASSET_DIR) else None
    """
    try:
        manifest = json.loads((dest / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        return False
    return all(
        asset.filename in listed and (dest / asset.filename).is_file()
        for package in IDE_PACKAGES
        for asset in package.assets
    )


def render_graphiql_page(
    *,
    graphql_path: str = "/graphql",
    asset_base: str | None,
    initial_query: str | None = None,
    initial_headers: Mapping[str, str] | None = None,
) -> str:
    """The GraphiQL page: query editor, explorer plugin and headers editor, posting to
    `graphql_path` with the browser's cookies and Strawberry's `x-csrftoken` header.

    ``initial_query`` and ``initial_headers`` fill the editors on a first visit
    (a shared link's own ``?q=``/``headers=`` win).

    Assets load from ``f"{asset_base}/{filename}"``, or from the pinned unpkg URLs when
    `asset_base` is None; either way with their Subresource Integrity.

    Example::

        page = render_graphiql_page(graphql_path="/graphql", asset_base="/graphiql/assets")
    """
    stylesheets: list[str] = []
    scripts: list[str] = []
    for package in IDE_PACKAGES:
        for asset in package.assets:
            if asset_base is None:
                url = package.cdn_url(asset)
            else:
                url = f"{asset_base.rstrip('/')}/{asset.filename}"
            attributes = (
                f'{"href" if asset.kind == "stylesheet" else "src"}="{html.escape(url)}" '
                f'integrity="{asset.sri}" crossorigin="anonymous"'
            )
            if asset.kind == "stylesheet":
                stylesheets.append(f'    <link rel="stylesheet" {attributes} />')
            else:
                scripts.append(f"    <script {attributes}></script>")
    return (
        _page_template()
        .replace("<!-- switchyard:stylesheets -->", "\n".join(stylesheets))
        .replace("<!-- switchyard:scripts -->", "\n".join(scripts))
        .replace("/* switchyard:graphql-path */", _script_string(graphql_path))
        .replace("/* switchyard:initial-query */", _script_string(initial_query or ""))
        .replace(
            "/* switchyard:initial-headers */",
            _script_string(json.dumps(dict(initial_headers), indent=2) if initial_headers else ""),
        )
    )


def page_security_headers(page: str, *, from_cdn: bool) -> dict[str, str]:
    """The browser security headers of a page ``render_graphiql_page`` made.

    Its Content-Security-Policy admits the page's own inline script and style (by their
    sha256), scripts and stylesheets from where the page loads them (the gateway itself,
    or exactly the CDN when ``from_cdn``), requests to the gateway only, and no framing;
    the referrer is never sent. Example::

        page = render_graphiql_page(asset_base="/graphiql/assets")
        response = HTMLResponse(page, headers=page_security_headers(page, from_cdn=False))
    """
    scripts = " ".join(_inline_hashes("script", page))
    styles = " ".join(_inline_hashes("style", page))
    source = DEFAULT_CDN if from_cdn else "'self'"
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {source} {scripts}",
            f"style-src {source} {styles}",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    return {
        "content-security-policy": policy,
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
    }


def _inline_hashes(tag: str, page: str) -> list[str]:
    """CSP sources for each inline ``<tag>`` element's text (one without ``src``)."""
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
        for text in found
    ]


def ide_asset_app(dest: Path) -> ASGIApp:
    """An ASGI app serving the fetched assets in `dest`, to mount at ``/graphiql/assets``.

    Only the pinned file names and the manifest are served. Asset names carry their version,
    so they are cached as immutable for a year; a missing directory answers 404.

    Example::

        app = Starlette(routes=[Mount("/graphiql/assets", app=ide_asset_app(DEFAULT_ASSET_DIR))])
    """
    return _IdeAssetFiles(directory=dest)


def fetch_command(dest: Path | None, *, registry: str = DEFAULT_NPM_REGISTRY) -> int:
    """Entry point of ``switchyard ide fetch [--dest DIR]``; returns the process exit code.

    Prints one line per installed file and a summary, or one ``error:`` line on stderr.

    Example::

        raise SystemExit(fetch_command(None))  # into DEFAULT_ASSET_DIR
    """
    target = DEFAULT_ASSET_DIR if dest is None else dest
    try:
        paths = asyncio.run(fetch_ide_assets(target, registry=registry))
    except IdeAssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    owners = {a.filename: p.spec for p in IDE_PACKAGES for a in p.assets}
    for path in paths:
        print(f"{owners[path.name]:<32} {path}  ({path.stat().st_size} bytes)")
    print(f"fetched {len(paths)} GraphiQL assets into {target}")
    return 0


class _IdeAssetFiles(StaticFiles):
    def __init__(self, *, directory: Path) -> None:
        super().__init__(directory=directory, check_dir=False)
        self._versioned = {a.filename for p in IDE_PACKAGES for a in p.assets}
        self._served = self._versioned | {MANIFEST_NAME}

    async def check_config(self) -> None:
        # The gateway mounts this before `switchyard ide fetch` may have run; it then serves
        # the CDN page, and stray requests here should get 404 rather than a 500.
        return

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in self._served:
            return "", None
        return super().lookup_path(path)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        name = Path(full_path).name
        cache_control = (
            DEFAULT_ASSET_CACHE_CONTROL
            if name in self._versioned
            else DEFAULT_MANIFEST_CACHE_CONTROL
        )
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=_MEDIA_TYPES.get(Path(name).suffix),
            headers={"cache-control": cache_control, "x-content-type-options": "nosniff"},
        )
        request_headers = Headers(scope=scope)
        if self.is_not_modified(response.headers, request_headers):
            return NotModifiedResponse(response.headers)
        # Compressed once (at fetch, else at first serve), in the coding the client accepts.
        encoded = compression.precompressed_response(
            Path(full_path), request_headers, dict(response.headers), response.media_type
        )
        return encoded or response


async def _fetch_package(
    client: httpx.AsyncClient, package: IdePackage, registry: str
) -> dict[str, bytes]:
    url = package.tarball_url(registry)
    tarball = await _download(client, url)
    return await asyncio.to_thread(_unpack, package, url, tarball)


async def _download(client: httpx.AsyncClient, url: str) -> bytes:
    body = bytearray()
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != httpx.codes.OK:
                raise IdeAssetError(f"cannot download {url}: HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > DEFAULT_MAX_TARBALL_BYTES:
                    raise IdeAssetError(
                        f"cannot download {url}: larger than {DEFAULT_MAX_TARBALL_BYTES} bytes"
                    )
    except httpx.HTTPError as exc:
        reason = " ".join(str(exc).split()) or "no details"
        raise IdeAssetError(f"cannot download {url}: {type(exc).__name__}: {reason}") from exc
    return bytes(body)


def _unpack(package: IdePackage, url: str, tarball: bytes) -> dict[str, bytes]:
    # Verified before tarfile sees a byte, so a hostile registry cannot feed it crafted input.
    algorithm, _, expected = package.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if not hmac.compare_digest(actual, expected):
        raise IdeAssetError(
            f"integrity mismatch for {package.spec} ({url}): "
            f"expected {package.integrity}, got {algorithm}-{actual}"
        )
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for asset in package.assets:
                files[asset.filename] = _read_member(archive, package, asset)
    except tarfile.TarError as exc:
        raise IdeAssetError(f"unreadable tarball for {package.spec} ({url}): {exc}") from exc
    return files


def _read_member(archive: tarfile.TarFile, package: IdePackage, asset: IdeAsset) -> bytes:
    # Only named regular members are read and written under our own file names: no
    # extractall, so member paths, links and devices in the archive never reach the disk.
    member_name = _TARBALL_ROOT + asset.path
    try:
        member = archive.getmember(member_name)
    except KeyError:
        raise IdeAssetError(f"{package.spec} tarball has no {member_name}") from None
    stream = archive.extractfile(member) if member.isreg() else None
    if stream is None:
        raise IdeAssetError(f"{package.spec} tarball entry {member_name} is not a regular file")
    data = stream.read()
    algorithm, _, expected = asset.sri.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if not hmac.compare_digest(actual, expected):
        raise IdeAssetError(
            f"integrity mismatch for {package.spec} {asset.path}: "
            f"expected {asset.sri}, got {algorithm}-{actual}"
        )
    return data


def _install(
    dest: Path, packages: tuple[IdePackage, ...], contents: list[dict[str, bytes]]
) -> list[Path]:
    manifest: dict[str, Any] = {"packages": {}, "files": {}}
    written: list[Path] = []
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for package, files in zip(packages, contents, strict=True):
            manifest["packages"][package.name] = package.version
            for asset in package.assets:
                data = files[asset.filename]
                written.append(_write_atomic(dest / asset.filename, data))
                manifest["files"][asset.filename] = {
                    "package": package.name,
                    "version": package.version,
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
        compression.precompress(written)  # .gz (.br, .zst) beside each asset
        # Written last: assets_present() only turns true once every file is in place.
        _write_atomic(dest / MANIFEST_NAME, json.dumps(manifest, indent=2).encode() + b"\n")
    except OSError as exc:
        raise IdeAssetError(f"cannot write GraphiQL assets into {dest}: {exc}") from exc
    return written


def _write_atomic(path: Path, data: bytes) -> Path:
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        # mkstemp creates 0600; the gateway may run as another user than the fetch did.
        temporary.chmod(_FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


@cache
def _page_template() -> str:
    resource = importlib.resources.files("switchyard") / "static" / "graphiql.html"
    return resource.read_text(encoding="utf-8")


def _script_string(value: str) -> str:
    # A JSON string with <, > and & escaped cannot close the <script> element it sits in.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

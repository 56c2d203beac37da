"""Fetching attachments against real local servers and files: modes, bounds,
failure kinds, MD5, the cache and single-flight."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mail_proxy.attachments import AttachmentRefused, AttachmentResolver, AttachmentUnavailable
from mail_proxy.client.signature import HEADER, check_signature
from mail_proxy.domain.mime import Attachment
from mail_proxy.domain.models import AuthMethod, ClientAuth, Tenant
from mail_proxy.domain.outgoing import OutgoingMessage, from_payload
from mail_proxy.metrics import Metrics
from mail_proxy.settings import Settings
from mail_proxy.testing import FileRoute, FileServer

PDF = b"%PDF-1.4 " + os.urandom(2000)
PDF_MD5 = hashlib.md5(PDF).hexdigest()
TENANT = Tenant(id="t1")
Resolve = Callable[..., Awaitable[list[Attachment]]]


def message(*specs: dict[str, Any]) -> OutgoingMessage:
    return from_payload(
        {
            "id": "m1",
            "from": "a@example.org",
            "to": ["b@example.com"],
            "subject": "s",
            "attachments": list(specs),
        }
    )


@pytest.fixture
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.fixture
async def make_resolver(
    settings_factory: Callable[..., Settings], base_dir: Path
) -> AsyncIterator[Callable[..., AttachmentResolver]]:
    """Resolvers whose loopback fetches the policy allows (127.0.0.1 only)."""
    made: list[AttachmentResolver] = []

    def make(**overrides: Any) -> AttachmentResolver:
        values: dict[str, Any] = {
            "private_targets_allowlist": ["127.0.0.1/32"],
            "attachment_fetch_timeout": 0.5,
            "attachment_base_dir": [str(base_dir)],
        }
        resolver = AttachmentResolver(settings_factory(**(values | overrides)), Metrics())
        made.append(resolver)
        return resolver

    yield make
    for resolver in made:
        await resolver.aclose()


async def resolve(
    resolver: AttachmentResolver, *specs: dict[str, Any], tenant: Tenant = TENANT, budget: float = 5
) -> list[Attachment]:
    deadline = asyncio.get_running_loop().time() + budget
    return await resolver.resolve(tenant, message(*specs), deadline, 1_700_000_000)


def fetches(resolver: AttachmentResolver, mode: str, outcome: str = "fetched") -> float:
    counter = resolver._metrics.attachment_fetches.labels(mode, outcome)
    return float(counter._value.get())


# -- http_url and endpoint ---------------------------------------------------------


async def test_http_url_with_its_own_auth(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    """GET with the spec's bearer token; the server's Content-Type is the part's type."""
    files.routes["/a.pdf"] = FileRoute(body=PDF, content_type="application/pdf", auth="Bearer tok")
    spec = {
        "filename": "a.pdf",
        "storage_path": f"{files.url}/a.pdf",
        "auth": {"method": "bearer", "token": "tok"},
    }
    [got] = await resolve(make_resolver(), spec)
    assert (got.filename, got.content, got.mime_type) == ("a.pdf", PDF, "application/pdf")
    assert files.requests[0][0] == "GET"


async def test_endpoint_posts_the_storage_path_with_the_tenant_auth(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    """POST {"storage_path"} to client_base_url + client_attachment_path, basic auth."""
    auth = "Basic " + base64.b64encode(b"app:pw").decode()
    files.routes["/mail-proxy/attachments"] = FileRoute(
        body=PDF, content_type="text/csv", auth=auth
    )
    tenant = Tenant(
        id="t1",
        client_base_url=files.url + "/",
        client_auth=ClientAuth(AuthMethod.BASIC, user="app", password="pw"),
    )
    [got] = await resolve(
        make_resolver(), {"filename": "r.csv", "storage_path": "doc_id=7"}, tenant=tenant
    )
    method, path, _, body = files.requests[0]
    assert (method, path, json.loads(body)) == (
        "POST",
        "/mail-proxy/attachments",
        {"storage_path": "doc_id=7"},
    )
    assert (got.content, got.mime_type) == (PDF, "text/csv")


async def test_endpoint_call_is_signed_with_the_tenant_secret(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    """The application can tell the proxy asked, as for sync calls."""
    files.routes["/mail-proxy/attachments"] = FileRoute(body=PDF)
    tenant = Tenant(id="t1", client_base_url=files.url, signing_secret="s3cret")
    await resolve(make_resolver(), {"filename": "a", "storage_path": "k"}, tenant=tenant)
    _, _, headers, body = files.requests[0]
    check_signature(body, headers.get(HEADER), "s3cret", now=1_700_000_000)


async def test_fetches_per_tenant_are_limited(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    """GMP_ATTACHMENT_FETCH_CONCURRENCY_PER_TENANT=2: six different files of one
    tenant are fetched two at a time; other tenants are not held up by them."""
    for index in range(6):
        files.routes[f"/f{index}"] = FileRoute(body=PDF, delay=0.1)
    resolver = make_resolver(attachment_fetch_concurrency_per_tenant=2)
    specs = [{"filename": "f", "storage_path": f"{files.url}/f{index}"} for index in range(6)]
    await asyncio.gather(*(resolve(resolver, spec) for spec in specs))
    assert files.peak == 2
    files.peak = 0
    others = [Tenant(id=f"t{index}") for index in range(3)]
    await asyncio.gather(*(resolve(resolver, specs[i], tenant=t) for i, t in enumerate(others)))
    assert files.peak == 3


async def test_endpoint_without_a_base_url_fails(
    make_resolver: Callable[..., AttachmentResolver],
) -> None:
    with pytest.raises(AttachmentRefused, match=r"r\.csv: endpoint mode needs"):
        await resolve(make_resolver(), {"filename": "r.csv", "storage_path": "doc_id=7"})


@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_gone_or_forbidden_fails_naming_the_attachment(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver], status: int
) -> None:
    files.routes["/x"] = FileRoute(status=status)
    with pytest.raises(AttachmentRefused, match=f"attachment x.bin: the server answered {status}"):
        await resolve(make_resolver(), {"filename": "x.bin", "storage_path": f"{files.url}/x"})


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_are_for_later(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver], status: int
) -> None:
    files.routes["/x"] = FileRoute(status=status)
    with pytest.raises(AttachmentUnavailable, match=f"x.bin: the server answered {status}"):
        await resolve(make_resolver(), {"filename": "x.bin", "storage_path": f"{files.url}/x"})


async def test_slow_server_is_a_timeout_for_later(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    files.routes["/slow"] = FileRoute(body=b"late", delay=1.5)
    with pytest.raises(AttachmentUnavailable, match="did not answer in time"):
        await resolve(make_resolver(), {"filename": "s", "storage_path": f"{files.url}/slow"})


async def test_fetch_ends_at_the_deadline(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    """The lease budget bounds the fetch even when the read timeout is longer."""
    files.routes["/slow"] = FileRoute(body=b"late", delay=2)
    resolver = make_resolver(attachment_fetch_timeout=30)
    with pytest.raises(AttachmentUnavailable, match="before the delivery deadline"):
        await resolve(resolver, {"filename": "s", "storage_path": f"{files.url}/slow"}, budget=0.3)


async def test_unreachable_server_is_for_later(
    make_resolver: Callable[..., AttachmentResolver],
) -> None:
    files = FileServer()
    url = files.url
    files.close()
    with pytest.raises(AttachmentUnavailable, match="connection failed"):
        await resolve(make_resolver(), {"filename": "s", "storage_path": f"{url}/gone"})


async def test_redirects_are_followed_within_the_limit(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    files.routes["/old"] = FileRoute(status=301, location="/new")
    files.routes["/new"] = FileRoute(body=PDF)
    [got] = await resolve(make_resolver(), {"filename": "a", "storage_path": f"{files.url}/old"})
    assert got.content == PDF
    files.routes["/loop"] = FileRoute(status=302, location="/loop")
    with pytest.raises(AttachmentRefused, match="redirected too many times"):
        await resolve(make_resolver(), {"filename": "a", "storage_path": f"{files.url}/loop"})
    assert files.hits["/loop"] == 4  # the first request and 3 redirects


async def test_redirect_to_a_private_address_is_refused(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    """Each hop is re-checked: 127.0.0.2 is not on the allowlist, nothing is sent there."""
    files.routes["/r"] = FileRoute(status=307, location=f"http://127.0.0.2:{files.port}/secret")
    with pytest.raises(AttachmentRefused, match="private or local address"):
        await resolve(make_resolver(), {"filename": "a", "storage_path": f"{files.url}/r"})
    assert "/secret" not in files.hits


async def test_private_address_is_refused_unless_allowed_or_trusted(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    files.routes["/a"] = FileRoute(body=PDF)
    spec = {"filename": "a", "storage_path": f"{files.url}/a"}
    strict = make_resolver(private_targets_allowlist=[])
    with pytest.raises(AttachmentRefused, match="private or local address"):
        await resolve(strict, spec)
    assert not files.hits
    [got] = await resolve(strict, spec, tenant=Tenant(id="t1", target_trusted=True))
    assert got.content == PDF


async def test_oversized_answer_fails(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    files.routes["/big"] = FileRoute(body=b"x" * 200_000)
    resolver = make_resolver(attachment_max_mb=0.1)
    with pytest.raises(AttachmentRefused, match="larger than"):
        await resolve(resolver, {"filename": "big", "storage_path": f"{files.url}/big"})


# -- MD5 and the cache -------------------------------------------------------------


async def test_md5_mismatch_fails_rather_than_sending_another_file(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    files.routes["/a"] = FileRoute(body=PDF)
    spec = {"filename": "a", "storage_path": f"{files.url}/a", "content_md5": "0" * 32}
    with pytest.raises(AttachmentRefused, match="does not match its MD5"):
        await resolve(make_resolver(), spec)


async def test_md5_marker_keys_the_cache_and_leaves_the_name(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    """Marker or field: fetched once, then served from memory; the field wins."""
    files.routes["/a"] = FileRoute(body=PDF)
    resolver = make_resolver()
    marked = {"filename": f"report_{{MD5:{PDF_MD5}}}.pdf", "storage_path": f"{files.url}/a"}
    by_field = {"filename": "r.pdf", "storage_path": f"{files.url}/a", "content_md5": PDF_MD5}
    both = {**marked, "content_md5": PDF_MD5.upper()}
    results = [await resolve(resolver, spec) for spec in (marked, by_field, both)]
    assert [r[0].filename for r in results] == ["report.pdf", "r.pdf", "report.pdf"]
    assert files.hits["/a"] == 1
    wrong_marker = {**by_field, "filename": f"r_{{MD5:{'1' * 32}}}.pdf"}
    [got] = await resolve(resolver, wrong_marker)  # the field wins over the marker
    assert got.content == PDF and files.hits["/a"] == 1


async def test_a_thousand_messages_fetch_the_file_once(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    files.routes["/a"] = FileRoute(body=PDF)
    resolver = make_resolver()
    spec = {"filename": "a.pdf", "storage_path": f"{files.url}/a", "content_md5": PDF_MD5}
    for _ in range(1000):
        await resolve(resolver, spec)
    assert files.hits["/a"] == 1 and fetches(resolver, "http_url") == 1


@pytest.mark.parametrize("with_md5", [True, False])
async def test_concurrent_requests_share_one_fetch(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver], with_md5: bool
) -> None:
    """Single-flight, with or without a given MD5."""
    files.routes["/a"] = FileRoute(body=PDF, delay=0.2)
    resolver = make_resolver()
    spec = {"filename": "a.pdf", "storage_path": f"{files.url}/a"}
    if with_md5:
        spec["content_md5"] = PDF_MD5
    results = await asyncio.gather(*(resolve(resolver, spec) for _ in range(50)))
    assert all(r[0].content == PDF for r in results)
    assert files.hits["/a"] == 1


async def test_disk_tier_survives_a_restart_and_is_bounded(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver], tmp_path: Path
) -> None:
    """No memory tier: a new resolver (a restarted process) reads the disk copy;
    beyond GMP_CACHE_DISK_MAX_MB the oldest file is evicted."""
    cache = tmp_path / "cache"
    options = {"cache_memory_max_mb": 0, "cache_disk_dir": str(cache), "cache_disk_max_mb": 0.005}
    files.routes["/a"] = FileRoute(body=PDF)
    spec = {"filename": "a", "storage_path": f"{files.url}/a", "content_md5": PDF_MD5}
    await resolve(make_resolver(**options), spec)
    [got] = await resolve(make_resolver(**options), spec)
    assert got.content == PDF and files.hits["/a"] == 1
    other = PDF[::-1]
    files.routes["/b"] = FileRoute(body=other)
    spec_b = {"filename": "b", "storage_path": f"{files.url}/b"}
    resolver = make_resolver(**options)
    await resolve(resolver, spec_b)
    await resolve(resolver, {**spec_b, "storage_path": f"{files.url}/a"})
    assert len(list(cache.iterdir())) == 2  # 3 files of 2 KB would pass the 5 KB cap


async def test_failures_are_not_cached(
    files: FileServer, make_resolver: Callable[..., AttachmentResolver]
) -> None:
    files.routes["/a"] = FileRoute(status=503)
    resolver = make_resolver()
    spec = {"filename": "a", "storage_path": f"{files.url}/a", "content_md5": PDF_MD5}
    with pytest.raises(AttachmentUnavailable):
        await resolve(resolver, spec)
    files.routes["/a"] = FileRoute(body=PDF)
    [got] = await resolve(resolver, spec)
    assert got.content == PDF


# -- base64 and filesystem ---------------------------------------------------------


async def test_base64_with_md5_check(make_resolver: Callable[..., AttachmentResolver]) -> None:
    data = base64.b64encode(PDF).decode()
    spec = {"filename": "a.pdf", "storage_path": "base64:" + data, "content_md5": PDF_MD5}
    [got] = await resolve(make_resolver(), spec)
    assert (got.content, got.mime_type) == (PDF, "application/pdf")
    with pytest.raises(AttachmentRefused, match="does not match"):
        await resolve(make_resolver(), {**spec, "content_md5": "f" * 32})


async def test_filesystem_reads_under_the_root(
    make_resolver: Callable[..., AttachmentResolver], base_dir: Path
) -> None:
    (base_dir / "sub").mkdir()
    (base_dir / "sub" / "r.pdf").write_bytes(PDF)
    inner = base_dir / "link.pdf"
    inner.symlink_to(base_dir / "sub" / "r.pdf")  # a symlink within the root is fine
    for path in (base_dir / "sub" / "r.pdf", inner):
        [got] = await resolve(make_resolver(), {"filename": "r.pdf", "storage_path": str(path)})
        assert got.content == PDF


@pytest.mark.parametrize(
    ("make_path", "reason"),
    [
        (lambda root, out: f"{root}/../{out.parent.name}/{out.name}", "without '..'"),
        (lambda root, out: str(out), "outside the folders"),
        (lambda root, out: _symlink(root / "ln", out), "leads outside the allowed folders"),
        (lambda root, out: _symlink(root / "dir", out.parent) + "/" + out.name, "outside"),
        (lambda root, out: _hardlink(root / "hl", out), "several hard links"),
        (lambda root, out: str(root / "missing.pdf"), "no such file"),
        (lambda root, out: _fifo(root / "pipe"), "not a regular file"),
    ],
)
async def test_filesystem_escapes_are_refused(
    make_resolver: Callable[..., AttachmentResolver],
    base_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    make_path: Callable[[Path, Path], str],
    reason: str,
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_bytes(b"secret")
    with pytest.raises(AttachmentRefused, match=reason):
        await resolve(
            make_resolver(), {"filename": "x", "storage_path": make_path(base_dir, outside)}
        )


async def test_the_proxys_own_files_are_never_read(
    make_resolver: Callable[..., AttachmentResolver], tmp_path: Path
) -> None:
    """A root set to contain the instance folder still cannot serve the database or key."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "mail_proxy.db").write_bytes(b"SQLite format 3")
    (data / "secret.key").write_bytes(b"key")
    resolver = make_resolver(attachment_base_dir=[str(tmp_path)])
    for name in ("mail_proxy.db", "secret.key"):
        spec = {"filename": name, "storage_path": str(data / name)}
        with pytest.raises(AttachmentRefused, match="the proxy's own files"):
            await resolve(resolver, spec)


async def test_filesystem_is_off_without_roots(
    make_resolver: Callable[..., AttachmentResolver], base_dir: Path
) -> None:
    (base_dir / "a").write_bytes(b"a")
    spec = {"filename": "a", "storage_path": str(base_dir / "a")}
    with pytest.raises(AttachmentRefused, match="filesystem attachments are disabled"):
        await resolve(make_resolver(attachment_base_dir=[]), spec)


def _symlink(link: Path, target: Path) -> str:
    link.symlink_to(target)
    return str(link)


def _hardlink(link: Path, target: Path) -> str:
    os.link(target, link)
    return str(link)


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return str(path)

"""``GET /files/{token}``: large files offloaded to ``file://`` storage, served by
the proxy itself.

The token is the only credential (a recipient has no API key): it is signed with
a key derived from the instance secret and expires, and the database decides
whether it still may be used (``lifespan_after_download_days`` shortens it after
the first download, for every process at once). Any refusal is the same 404, so a
prober learns nothing about which tokens exist. Files are always sent as an
``attachment`` of type ``application/octet-stream`` with ``nosniff``: an uploaded
HTML file must never run as a page of the proxy's origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from mail_proxy.api.deps import RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.domain.large_files import MAX_TOKEN, local_path
from mail_proxy.errors import NotFound

router = APIRouter(tags=["downloads"], responses=ERROR_RESPONSES)


@router.get(
    "/files/{token}",
    summary="Download an offloaded large file (no API token: the link is the credential)",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download(
    runtime: RuntimeDep, token: str = PathParam(max_length=MAX_TOKEN)
) -> FileResponse:
    file = await runtime.store.offloaded_files.redeem(token, runtime.clock.now())
    path = Path(local_path(file.url)) if file and file.url.startswith("file://") else None
    if file is None or path is None or not path.is_file():
        raise NotFound("Unknown or expired download link")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=file.filename,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"},
    )

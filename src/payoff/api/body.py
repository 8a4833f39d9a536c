"""Reading a request body with a bound, refusing too large ones with 413 before reading them."""

from __future__ import annotations

from fastapi import HTTPException, Request


async def read_body(request: Request, limit_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise HTTPException(413, f"body of {declared} bytes; at most {limit_bytes} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise HTTPException(413, f"body larger than {limit_bytes} bytes, the most accepted")
        chunks.append(chunk)
    return b"".join(chunks)

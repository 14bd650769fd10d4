"""Streaming multipart upload: the file part goes straight to a hashing spool on disk, so a
1 GB upload needs no more memory than a 1 KB one; small text fields are kept in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from materials_api.api.errors import ApiError
from materials_api.platform.errors import Kind
from materials_api.platform.sniff import safe_file_name
from materials_api.platform.storage import Spool, Spooled

T = TypeVar("T")
MAX_FIELD = 4096
FILE_PART = {"type": "string", "format": "binary", "description": "the file's bytes (its name is kept)"}


def multipart_body(fields: dict[str, dict], required: tuple[str, ...] = ("file",), *,
                   json_alternative: dict | None = None) -> dict:
    """The request body for the OpenAPI schema of a route that streams its multipart form
    itself (`receive_upload`, not FastAPI's form parsing): a `file` part and these text fields,
    each at most MAX_FIELD bytes (so MAX_FIELD / 4 characters of any script). Pass it as the
    route's `openapi_extra`."""
    properties = {"file": FILE_PART} | {name: {"type": "string", "maxLength": MAX_FIELD // 4} | schema
                                        for name, schema in fields.items()}
    content = {"multipart/form-data": {"schema": {"type": "object", "properties": properties,
                                                  "required": list(required)}}}
    if json_alternative is not None:
        content["application/json"] = {"schema": json_alternative}
    return {"requestBody": {"required": True, "content": content}}


async def receive_upload(request: Request, spool_dir: Path, max_bytes: int, *, durable: bool = True,
                         then: Callable[[Spooled, str, dict[str, str]], T] | None = None) -> tuple[Any, str, dict[str, str]]:
    """Stream a multipart upload to the spool; returns (the spooled file, its name, the text
    fields). `durable`: fsync it (not for bytes only checked and thrown away). `then(spooled,
    name, fields)`: what the caller does with it next (storing), run in the same worker thread
    as the fsync, its result returned in place of the spooled file (discarded if it fails)."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise ApiError(Kind.UNSUPPORTED, "multipart_required", "send the file as multipart/form-data with a 'file' part")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise ApiError(Kind.TOO_LARGE, "file_too_large", f"the file is larger than the limit of {max_bytes} bytes")

    state = {"name": None, "file_name": None, "header_field": b"", "header_value": b"", "headers": {}, "ended": False}
    fields: dict[str, str] = {}
    spool: list[Spool] = []
    buffer = bytearray()
    errors: list[ApiError] = []

    def on_part_begin():
        state.update(name=None, headers={})
        buffer.clear()

    def on_header_field(data, start, end):
        state["header_field"] += data[start:end]

    def on_header_value(data, start, end):
        state["header_value"] += data[start:end]

    def on_header_end():
        state["headers"][state["header_field"].lower()] = state["header_value"]
        state["header_field"], state["header_value"] = b"", b""

    def on_headers_finished():
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disp.get(b"name", b"").decode("utf-8", "replace")
        fname = disp.get(b"filename")
        if state["name"] == "file":
            if spool:
                errors.append(ApiError(Kind.MALFORMED, "one_file_only", "send one 'file' part per upload"))
                return
            # Kept apart from the per-part state: fields may follow the file part.
            state["file_name"] = fname.decode("utf-8", "replace") if fname is not None else ""
            spool.append(Spool(spool_dir, max_bytes))

    def on_part_data(data, start, end):
        if errors:
            return
        if state["name"] == "file" and spool:
            try:
                spool[0].write(bytes(data[start:end]))
            except OverflowError:
                errors.append(ApiError(Kind.TOO_LARGE, "file_too_large", f"the file is larger than the limit of {max_bytes} bytes"))
        else:
            buffer.extend(data[start:end])
            if len(buffer) > MAX_FIELD:
                errors.append(ApiError(Kind.TOO_LARGE, "field_too_large", f"form field {state['name']!r} is too long"))

    def on_part_end():
        if state["name"] and state["name"] != "file":
            fields[state["name"]] = buffer.decode("utf-8", "replace").strip()

    def on_end():
        state["ended"] = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_end": on_end,
    })
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                if errors:
                    raise errors[0]
            parser.finalize()
        except ClientDisconnect:
            raise ApiError(Kind.MALFORMED, "upload_truncated", "the upload was cut off before its end") from None
        except ApiError:
            raise
        except Exception as exc:  # noqa: BLE001 - the parser's own errors are the client's
            raise ApiError(Kind.MALFORMED, "multipart_malformed", f"the multipart body is malformed: {exc}") from None
        if errors:
            raise errors[0]
        if not spool:
            raise ApiError(Kind.INVALID, "file_missing", "no 'file' part in the upload")
        if not state["ended"]:
            raise ApiError(Kind.MALFORMED, "upload_truncated", "the upload was cut off before its end")
        # The fsync waits on the disk: off the event loop, so other requests go on meanwhile
        # (and concurrent fsyncs share the file system's journal commits); storing follows in
        # the same thread hop.
        name = safe_file_name(state["file_name"])

        def finish():
            spooled = spool[0].finish(durable)
            if then is None:
                return spooled
            try:
                return then(spooled, name, fields)
            except BaseException:
                spooled.discard()
                raise

        return await run_in_threadpool(finish), name, fields
    except BaseException:
        for s in spool:
            s.abort()
        raise

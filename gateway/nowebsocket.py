"""WebSocket upgrades: mjgate, like GoAPI, has none. Every upgrade, to any path, is refused with
the GoAPI envelope (404 `not_found`) as its HTTP answer, through the ASGI WebSocket denial
response; without it a server answers the close with a bare 403 (uvicorn's, text/plain)."""

from __future__ import annotations

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from gateway.errors import envelope


async def refuse_websocket(websocket: WebSocket) -> None:
    """Refuse the upgrade with the envelope (or close it, where denial responses are not
    supported)."""
    answer = envelope(404, "not_found", f"no WebSocket route {websocket.url.path}: mjgate has none")
    try:
        await websocket.send_denial_response(answer)
    except RuntimeError:
        await websocket.close()


def websocket_refusal() -> WebSocketRoute:
    """The route every WebSocket upgrade meets (routing HTTP requests never match it)."""
    return WebSocketRoute("/{path:path}", refuse_websocket)

"""The gateway: websocket connections, IDENTIFY and RESUME, heartbeats, and
dispatches (sequenced and buffered per session, so a RESUME replays them)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import zlib

from aiohttp import WSMsgType, web

from .constants import (
    CLOSE_ALREADY_AUTHENTICATED,
    CLOSE_AUTHENTICATION_FAILED,
    CLOSE_DECODE_ERROR,
    CLOSE_UNKNOWN_ERROR,
    CLOSE_UNKNOWN_OPCODE,
)
from .payloads import Payloads
from .state import GatewaySession, Json

logger = logging.getLogger(__name__)


class GatewaySocket:
    """One websocket connection; zlib-stream compressed when asked for."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.compress = compress
        # One zlib context for the whole connection, flushed per message: what discord.py expects.
        # zstd-stream is answered with plain text frames, which discord.py accepts whatever it asked.
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None
        self._lock = asyncio.Lock()  # frames must leave in compression order
        self.session: GatewaySession | None = None

    @property
    def open(self) -> bool:
        return not self.ws.closed

    async def send(self, frame: Json) -> None:
        text = json.dumps(frame, separators=(",", ":"))
        async with self._lock:
            if self._zlib is not None:
                data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(text)


class Gateway(Payloads):
    # --- for tests ------------------------------------------------------------------

    async def dispatch(self, event: str, data: Json) -> None:
        """Send any gateway event to every identified session (buffered for those resuming)."""
        for session in self.sessions:
            if session.ready:
                await self._send_dispatch(session, event, data)

    async def disconnect_gateway(self, code: int = CLOSE_UNKNOWN_ERROR, *, resumable: bool = True) -> None:
        """Close every gateway connection with `code` (discord.py reconnects after 4000 and RESUMEs).

        `resumable=False` forgets the sessions too: the RESUME is answered with
        INVALID_SESSION and the bot has to IDENTIFY again (a new session)."""
        if not resumable:
            for session in self.sessions:
                session.invalidated = True
        for sock in [s for s in self._sockets if s.open]:
            await asyncio.wait_for(sock.ws.close(code=code, message=b"stand-in: injected disconnect"), 10.0)

    async def request_reconnect(self) -> None:
        """RECONNECT (op 7) on every identified connection, as Discord sends before moving a
        session: the client closes the connection and RESUMEs on a new one."""
        for sock in self._identified_sockets():
            await sock.send({"op": 7, "d": None, "s": None, "t": None})

    async def invalidate_sessions(self, *, resumable: bool) -> None:
        """INVALID_SESSION (op 9) on every identified connection, with `d: resumable`: the client
        RESUMEs after `true`; after `false` the sessions are gone and it has to IDENTIFY again."""
        for sock in self._identified_sockets():
            if not resumable and sock.session is not None:
                sock.session.invalidated = True
            await sock.send({"op": 9, "d": resumable, "s": None, "t": None})

    def _identified_sockets(self) -> list[GatewaySocket]:
        return [s for s in self._sockets if s.open and s.session is not None]

    # --- the connection -----------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        sock = GatewaySocket(ws, request.query.get("compress"))
        self._sockets.add(sock)
        try:
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=CLOSE_DECODE_ERROR, message=b"only encoding=json is supported")
                return ws
            hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["standin"]}
            await sock.send({"op": 10, "d": hello, "s": None, "t": None})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    await ws.close(code=CLOSE_DECODE_ERROR, message=b"expected text frames")
                    break
                try:
                    frame = json.loads(msg.data)
                except json.JSONDecodeError:
                    await ws.close(code=CLOSE_DECODE_ERROR, message=b"invalid JSON")
                    break
                await self._on_frame(sock, frame)
        except (ConnectionResetError, RuntimeError) as error:
            logger.debug("gateway connection lost: %s", error)
        finally:
            self._sockets.discard(sock)
            if sock.session is not None and sock.session.socket is sock:
                sock.session.socket = None
            self._changed()
        return ws

    async def _on_frame(self, sock: GatewaySocket, frame: Json) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:  # HEARTBEAT (the first one comes before IDENTIFY)
            self.heartbeats += 1
            if sock.session is not None:
                sock.session.heartbeats += 1
            await sock.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:  # IDENTIFY
            await self._identify(sock, data or {})
        elif op == 6:  # RESUME
            await self._resume(sock, data or {})
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            members = [self._member(u) for u in self.users.values()]
            chunk = {"guild_id": str(self.guild_id), "members": members, "chunk_index": 0, "chunk_count": 1}
            if data and data.get("nonce"):
                chunk["nonce"] = data["nonce"]
            if sock.session is not None:
                await self._send_dispatch(sock.session, "GUILD_MEMBERS_CHUNK", chunk)
        elif op in (3, 4):  # presence and voice state updates: accepted, ignored
            pass
        else:
            await sock.ws.close(code=CLOSE_UNKNOWN_OPCODE, message=b"unknown opcode")

    def _token_ok(self, token: str | None) -> bool:
        return token in (self.token, f"Bot {self.token}")

    async def _identify(self, sock: GatewaySocket, data: Json) -> None:
        if sock.session is not None:
            await sock.ws.close(code=CLOSE_ALREADY_AUTHENTICATED, message=b"already authenticated")
            return
        if not self._token_ok(data.get("token")):
            await sock.ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"authentication failed")
            return
        session = GatewaySession(
            id=secrets.token_hex(16),
            intents=int(data.get("intents", 0)),
            identified_at=time.monotonic(),
            compression=sock.compress,
        )
        sock.session, session.socket = session, sock
        self.sessions.append(session)
        ready: Json = {
            "v": 10,
            "user": self._me_payload(),
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "user_settings": {},
            "_trace": ["standin"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._send_dispatch(session, "READY", ready)
        await self._send_dispatch(session, "GUILD_CREATE", self._guild(session.intents))
        session.ready = True
        logger.info("gateway session %s identified (intents %d)", session.id, session.intents)
        self._changed()

    async def _resume(self, sock: GatewaySocket, data: Json) -> None:
        session = next((s for s in self.sessions if s.id == data.get("session_id")), None)
        if session is None or session.invalidated or not self._token_ok(data.get("token")):
            await sock.send({"op": 9, "d": False, "s": None, "t": None})  # INVALID_SESSION, not resumable
            return
        previous = session.socket
        if previous is not None and previous is not sock and previous.open:
            await previous.ws.close(code=CLOSE_UNKNOWN_ERROR, message=b"session resumed elsewhere")
        seq = data.get("seq") or 0
        async with session.lock:
            sock.session, session.socket = session, sock
            for frame in list(session.buffer):
                if frame["s"] > seq:
                    await sock.send(frame)
                    self._mark_dispatched(frame)
        session.resumes += 1
        await self._send_dispatch(session, "RESUMED", {"_trace": ["standin"]})
        logger.info("gateway session %s resumed from seq %s", session.id, seq)
        self._changed()

    # --- dispatches ------------------------------------------------------------------------

    async def _send_dispatch(self, session: GatewaySession, event: str, data: Json) -> None:
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "s": session.seq, "t": event, "d": data}
            session.buffer.append(frame)
            sock = session.socket
            if sock is None or not sock.open:
                return  # kept for RESUME
            try:
                await sock.send(frame)
            except (ConnectionResetError, RuntimeError) as error:
                logger.debug("dispatch %s to session %s not sent: %s", event, session.id, error)
                return
            self._mark_dispatched(frame)

    async def _dispatch_with_intent(self, intent: int, event: str, data: Json) -> None:
        for session in self.sessions:
            if session.ready and session.intents & intent:
                await self._send_dispatch(session, event, data)

    def _mark_dispatched(self, frame: Json) -> None:
        if frame["t"] == "INTERACTION_CREATE":
            interaction = self._interactions.get(int(frame["d"]["id"]))
            if interaction is not None and interaction.dispatched_at is None:
                interaction.dispatched_at = time.monotonic()

#!/usr/bin/python3
"""
Tsunagi's wire protocol in Python, written from the contract alone: the `.proto` files
under proto/tsunagi/v1/ and docs/protocol.md. Nothing here comes from the TypeScript
code; it is a second, independent implementation.

Three parts:

- The contract's messages, generated from the `.proto` files with `protoc --python_out`
  into `gen/` beside this file (git-ignored) the first time they are needed, and again
  whenever a `.proto` file changes. `pb` holds every message and enum of the package:
  `pb.Envelope`, `pb.ExpoFrame`, `pb.ErrorCode`...
- A room session over Colyseus 0.18's protocol (RoomConnection): the matchmaking POST,
  the WebSocket with the seat reservation, the JOIN_ROOM handshake, and Envelopes in the
  room's "pb" bytes message.
- The device channel of a node's gateway (DeviceChannel): the signed challenge, the
  gateway's proof, and the seal (sequence number and MAC) on every frame after the
  welcome.

Runs on Debian's Python 3.11 with python3-protobuf and python3-websockets.
`/usr/bin/python3 tsunagi_wire.py` generates the code and says where it is.

Example:

    import asyncio, tsunagi_wire as wire

    async def main():
        token = wire.dev_token("http://127.0.0.1:2567", "visitor")
        room = await wire.RoomConnection.join("http://127.0.0.1:2567", "joinById", "expo-demo", {}, token)
        while True:
            message = await room.receive(timeout=5)
            if isinstance(message, wire.pb.Envelope):
                print(message.WhichOneof("body"))
"""

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import types
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
#: Where the contract lives: the repository's proto/ folder (TSUNAGI_PROTO_DIR overrides it).
PROTO_DIR = os.environ.get("TSUNAGI_PROTO_DIR") or os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
#: Where the generated code goes (git-ignored).
GEN_DIR = os.path.join(HERE, "gen")
PACKAGE = os.path.join("tsunagi", "v1")

# ---------------------------------------------------------------------------------------
# Generated code
# ---------------------------------------------------------------------------------------


def _proto_files():
    folder = os.path.join(PROTO_DIR, PACKAGE)
    try:
        names = sorted(name for name in os.listdir(folder) if name.endswith(".proto"))
    except FileNotFoundError:
        raise SystemExit(f"tsunagi_wire: no .proto files in {folder} (set TSUNAGI_PROTO_DIR to the folder holding tsunagi/v1/)")
    if not names:
        raise SystemExit(f"tsunagi_wire: no .proto files in {folder}")
    return [os.path.join(PACKAGE, name) for name in names]


def generate():
    """
    The folder holding the generated package for the current `.proto` files: gen/<hash of
    their contents>/tsunagi/v1/*_pb2.py. Generated once per version of the contract, into a
    temporary folder renamed into place, so processes starting together never see half of it.
    """
    files = _proto_files()
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0")
        with open(os.path.join(PROTO_DIR, name), "rb") as handle:
            digest.update(handle.read() + b"\0")
    target = os.path.join(GEN_DIR, digest.hexdigest()[:16])
    if os.path.isdir(target):
        return target
    os.makedirs(GEN_DIR, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="tmp-", dir=GEN_DIR)
    try:
        result = subprocess.run(["protoc", f"--proto_path={PROTO_DIR}", f"--python_out={scratch}", *files],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise SystemExit(f"tsunagi_wire: protoc failed ({result.returncode}):\n{result.stderr}")
        try:
            os.rename(scratch, target)
        except OSError:
            if not os.path.isdir(target):
                raise
            # another process generated the same version meanwhile: use theirs
    except FileNotFoundError:
        raise SystemExit("tsunagi_wire: protoc is not installed (Debian: apt-get install protobuf-compiler)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # Older versions of the contract are not needed any more, nor what a killed run left half done.
    for name in os.listdir(GEN_DIR):
        path = os.path.join(GEN_DIR, name)
        try:
            abandoned = name.startswith("tmp-") and time.time() - os.path.getmtime(path) > 600
        except OSError:
            continue  # gone meanwhile
        if path != target and os.path.isdir(path) and (abandoned or not name.startswith("tmp-")):
            shutil.rmtree(path, ignore_errors=True)
    return target


def _load():
    folder = generate()
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import importlib
    modules = [importlib.import_module("tsunagi.v1." + os.path.basename(name)[:-len(".proto")] + "_pb2") for name in _proto_files()]
    names = {}
    for module in modules:
        for name in list(module.DESCRIPTOR.message_types_by_name) + list(module.DESCRIPTOR.enum_types_by_name):
            names[name] = getattr(module, name)
    return types.SimpleNamespace(**names)


#: Every message and enum of package tsunagi.v1.
pb = _load()

# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def error_name(code):
    """The ErrorCode name of a code ("FORBIDDEN"), or the number as text."""
    try:
        return pb.ErrorCode.Name(int(code))
    except (ValueError, TypeError):
        return str(code)


class TsunagiError(Exception):
    """A coded refusal: the server's ErrorCode (or a WebSocket close code) and its message."""

    def __init__(self, code, message, retryable=False):
        self.code = int(code)
        self.message = str(message)
        self.retryable = retryable
        super().__init__(str(self))

    def __str__(self):
        # The server's HTTP refusals already start with "[code NAME]".
        if self.message.startswith(f"[{self.code} "):
            return self.message
        return f"[{self.code} {error_name(self.code)}] {self.message}"


def error_of(envelope_error):
    """A TsunagiError from an Error message."""
    return TsunagiError(envelope_error.code, envelope_error.message, envelope_error.retryable)

# ---------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------


def http_request(method, url, body=None, token=None, timeout=10.0, expect_json=True):
    """
    One HTTP request; the parsed JSON answer (or the text). A refusal raises TsunagiError
    with the body's `code` and `error` (docs/protocol.md: every HTTP refusal is JSON
    `{ code, error }`), or the HTTP status when the body says nothing.
    """
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as refusal:
        text = refusal.read().decode(errors="replace")
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {}
        if isinstance(answer, dict) and isinstance(answer.get("code"), int):
            raise TsunagiError(answer["code"], answer.get("error") or text) from None
        raise TsunagiError(refusal.code, f"{method} {url}: HTTP {refusal.code} {text[:200]}".strip()) from None
    except (urllib.error.URLError, OSError) as failure:
        reason = getattr(failure, "reason", failure)
        raise TsunagiError(pb.ErrorCode.Value("REGION_UNAVAILABLE"), f"{method} {url}: {reason}", retryable=True) from None
    if not expect_json:
        return text
    try:
        return json.loads(text)
    except ValueError:
        raise TsunagiError(pb.ErrorCode.Value("WRONG_TYPE"), f"{method} {url}: not JSON: {text[:200]}") from None


def dev_token(node, role, sub=None, room=None):
    """A token from a dev node's GET /dev/token (loopback dev nodes only, e.g. `npm start`)."""
    query = {"role": role}
    if sub:
        query["sub"] = sub
    if room:
        query["room"] = room
    try:
        token = http_request("GET", f"{node.rstrip('/')}/dev/token?{urllib.parse.urlencode(query)}", expect_json=False).strip()
    except TsunagiError as error:
        if error.code == 404:
            raise TsunagiError(pb.ErrorCode.Value("TOKEN_MISSING"), f"{node} issues no dev tokens (GET /dev/token answered 404: not a dev node); pass a token") from None
        raise
    if not token:
        raise TsunagiError(pb.ErrorCode.Value("TOKEN_MISSING"), "GET /dev/token answered an empty token")
    return token


def dev_enroll(node, device_id, device_class):
    """Enrols a device on a dev node (GET /dev/device); the answer's JSON, with `deviceSecret`."""
    query = urllib.parse.urlencode({"id": device_id, "class": device_class})
    try:
        return http_request("GET", f"{node.rstrip('/')}/dev/device?{query}")
    except TsunagiError as error:
        if error.code == 404:
            raise TsunagiError(pb.ErrorCode.Value("DEVICE_UNKNOWN"), f"{node} enrols no devices (GET /dev/device answered 404: not a dev node)") from None
        raise


def gateway_endpoint(node):
    """The node's device gateway, from GET /gateway: {url, regionId, nodeId[, certUrl]}."""
    return http_request("GET", f"{node.rstrip('/')}/gateway")


def read_token(token=None, token_file=None, env="TSUNAGI_TOKEN"):
    """The token from an argument, a file or the environment; None when none is given."""
    if token:
        return token.strip()
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            return handle.read().strip()
    return (os.environ.get(env) or "").strip() or None

# ---------------------------------------------------------------------------------------
# Colyseus 0.18 framing
# ---------------------------------------------------------------------------------------
#
# Each WebSocket frame starts with a protocol code (low 5 bits; the high 3 are modifier
# bits). Strings and numbers in the headers use Colyseus' msgpack-like codec, whose
# multi-byte integers and floats are LITTLE-endian (unlike standard msgpack).

JOIN_ROOM = 10
ERROR = 11
LEAVE_ROOM = 12
ROOM_DATA = 13
ROOM_STATE = 14
ROOM_STATE_PATCH = 15
ROOM_DATA_BYTES = 17
PING = 18
ROOM_RESPONSE = 22
PROTOCOL_CODE_MASK = 0x1F
MODIFIER_TIMED = 0x80
MODIFIER_UNRELIABLE = 0x40

#: The message type every Envelope travels under.
ENVELOPE_MESSAGE_TYPE = "pb"

#: Colyseus' close code after a consented leave.
CLOSE_CONSENTED = 4000


def encode_string(text):
    data = text.encode()
    length = len(data)
    if length < 0x20:
        return bytes([0xA0 | length]) + data
    if length < 0x100:
        return bytes([0xD9, length]) + data
    if length < 0x10000:
        return b"\xda" + struct.pack("<H", length) + data
    return b"\xdb" + struct.pack("<I", length) + data


def is_string(buffer, at):
    prefix = buffer[at]
    return 0xA0 < prefix < 0xC0 or prefix in (0xD9, 0xDA, 0xDB)


def decode_string(buffer, at):
    """(text, next offset)."""
    prefix = buffer[at]
    at += 1
    if prefix < 0xC0:
        length = prefix & 0x1F
    elif prefix == 0xD9:
        length = buffer[at]
        at += 1
    elif prefix == 0xDA:
        (length,) = struct.unpack_from("<H", buffer, at)
        at += 2
    elif prefix == 0xDB:
        (length,) = struct.unpack_from("<I", buffer, at)
        at += 4
    else:
        raise ValueError(f"not a string at {at - 1} (prefix 0x{prefix:02x})")
    return bytes(buffer[at:at + length]).decode(errors="replace"), at + length


_NUMBER_FORMATS = {0xCA: "<f", 0xCB: "<d", 0xCC: "<B", 0xCD: "<H", 0xCE: "<I", 0xCF: "<Q", 0xD0: "<b", 0xD1: "<h", 0xD2: "<i", 0xD3: "<q"}


def decode_number(buffer, at):
    """(number, next offset)."""
    prefix = buffer[at]
    at += 1
    if prefix < 0x80:
        return prefix, at
    if prefix > 0xDF:
        return prefix - 0x100, at
    layout = _NUMBER_FORMATS.get(prefix)
    if layout is None:
        raise ValueError(f"not a number at {at - 1} (prefix 0x{prefix:02x})")
    (value,) = struct.unpack_from(layout, buffer, at)
    return value, at + struct.calcsize(layout)


#: The header of a "pb" bytes message: ROOM_DATA_BYTES, then the type as a string.
ENVELOPE_PREFIX = bytes([ROOM_DATA_BYTES]) + encode_string(ENVELOPE_MESSAGE_TYPE)


class RoomClosed(Exception):
    """The room's socket closed."""

    def __init__(self, code, reason=""):
        self.code = code
        self.reason = reason
        super().__init__(f"the room closed the connection (code {code}{': ' + reason if reason else ''})")


def _websockets():
    import websockets
    return websockets


def _ws_base(node):
    """ws(s)://host:port[/path] for an http(s):// node URL."""
    parsed = urllib.parse.urlsplit(node)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parsed.scheme)
    if scheme is None:
        raise ValueError(f"node URL must be http:// or https://, got {node!r}")
    return scheme, parsed.netloc + parsed.path.rstrip("/")


class RoomConnection:
    """
    One session in a Tsunagi room, spoken in Colyseus 0.18's protocol:

    1. `POST {node}/matchmake/{method}/{room}` with the join options as JSON and the token as
       `Authorization: Bearer`; the answer is a seat reservation
       `{name, sessionId, roomId, processId, publicAddress?}`.
    2. A WebSocket to `ws://{publicAddress}/{processId}/{roomId}?sessionId=…&_authToken=…`.
    3. The room sends JOIN_ROOM `[10][len][reconnection token][len][serializer id][state
       handshake…]`; the client acknowledges with `[10]`, and only then gets the room's state
       and the messages queued for it. A refused join is ERROR `[11][code][message]`, then a close.
    4. Envelopes go both ways as ROOM_DATA_BYTES `[17][string "pb"][Envelope bytes]`.
    5. Leaving is LEAVE_ROOM `[12]`; the room closes the socket with 4000.

    The schema state (ROOM_STATE, ROOM_STATE_PATCH) and msgpack messages are not decoded:
    Tsunagi's expo and teleop contracts are the Envelopes.
    """

    def __init__(self, ws, seat):
        self.ws = ws
        self.seat = seat
        self.session_id = seat.get("sessionId", "")
        self.room_id = seat.get("roomId", "")
        self.reconnection_token = ""
        self.serializer = ""
        self._input_seq = 0

    @classmethod
    async def join(cls, node, method, room, options, token, timeout=10.0):
        """Matchmakes (`joinOrCreate`, `create`, `join`, `joinById`) and joins; raises TsunagiError on refusal."""
        url = f"{node.rstrip('/')}/matchmake/{method}/{urllib.parse.quote(room, safe='')}"
        seat = await asyncio.to_thread(http_request, "POST", url, options or {}, token, timeout)
        if not isinstance(seat, dict) or not seat.get("sessionId") or not seat.get("roomId") or not seat.get("processId"):
            raise TsunagiError(pb.ErrorCode.Value("WRONG_TYPE"), f"matchmaking answered no seat reservation: {json.dumps(seat)[:200]}")
        return await cls.consume(node, seat, token, timeout)

    @classmethod
    async def consume(cls, node, seat, token, timeout=10.0):
        """Connects with a seat reservation (from matchmaking, or a handoff's reservation_json)."""
        scheme, base = _ws_base(node)
        address = seat.get("publicAddress") or base
        query = {"sessionId": seat["sessionId"]}
        if seat.get("reconnectionToken"):
            query["reconnectionToken"] = seat["reconnectionToken"]
        if token:
            query["_authToken"] = token
        url = f"{scheme}://{address}/{seat['processId']}/{seat['roomId']}?{urllib.parse.urlencode(query)}"
        websockets = _websockets()
        try:
            ws = await websockets.connect(url, open_timeout=timeout, compression=None, max_size=4 * 1024 * 1024, close_timeout=2)
        except websockets.exceptions.InvalidStatusCode as refusal:
            raise TsunagiError(refusal.status_code, f"the room's WebSocket upgrade was refused: HTTP {refusal.status_code}") from None
        except (OSError, asyncio.TimeoutError) as failure:
            raise TsunagiError(pb.ErrorCode.Value("REGION_UNAVAILABLE"), f"cannot connect to {scheme}://{address}: {failure}", retryable=True) from None
        connection = cls(ws, seat)
        try:
            await asyncio.wait_for(connection._handshake(), timeout)
        except asyncio.TimeoutError:
            await ws.close()
            raise TsunagiError(pb.ErrorCode.Value("REQUEST_TIMEOUT"), f"no JOIN_ROOM from room {seat['roomId']} within {timeout} s") from None
        except BaseException:
            await ws.close()
            raise
        return connection

    async def _handshake(self):
        websockets = _websockets()
        while True:
            try:
                frame = await self.ws.recv()
            except websockets.exceptions.ConnectionClosed:
                raise TsunagiError(self.ws.close_code or 1006, f"the room closed the connection before the join completed ({self.ws.close_reason or 'no reason'})") from None
            if isinstance(frame, str):
                continue
            code = frame[0] & PROTOCOL_CODE_MASK
            if code == ERROR:
                raise self._error_frame(frame)
            if code != JOIN_ROOM:
                continue  # nothing else is sent before the handshake
            at = 1
            length = frame[at]
            self.reconnection_token = bytes(frame[at + 1:at + 1 + length]).decode(errors="replace")
            at += 1 + length
            length = frame[at]
            self.serializer = bytes(frame[at + 1:at + 1 + length]).decode(errors="replace")
            # The rest (state reflection, tagged sections) describes the schema state, unused here.
            await self.ws.send(bytes([JOIN_ROOM]))
            return

    @staticmethod
    def _error_frame(frame):
        at = 1
        code, at = decode_number(frame, at)
        message = ""
        if at < len(frame):
            message, at = decode_string(frame, at)
        return TsunagiError(code, message)

    def next_input_seq(self):
        self._input_seq += 1
        return self._input_seq

    async def send(self, envelope):
        """Sends an Envelope in the "pb" message, numbered (input_seq, from 1 per session)."""
        if envelope.input_seq == 0:
            envelope.input_seq = self.next_input_seq()
        await self.ws.send(ENVELOPE_PREFIX + envelope.SerializeToString())

    async def receive(self, timeout=None):
        """
        The next message: an Envelope, or a TsunagiError for a Colyseus room error
        (`room.onError`: the same refusal also comes as an Error Envelope). Pings from the
        room are answered here. Raises RoomClosed when the socket closes, asyncio.TimeoutError
        after `timeout` seconds of nothing.
        """
        websockets = _websockets()
        while True:
            try:
                frame = await asyncio.wait_for(self.ws.recv(), timeout)
            except websockets.exceptions.ConnectionClosed:
                raise RoomClosed(self.ws.close_code or 1006, self.ws.close_reason or "") from None
            if isinstance(frame, str):
                continue
            code = frame[0] & PROTOCOL_CODE_MASK
            at = 1
            if frame[0] & MODIFIER_TIMED:
                at += 8  # [uint32 server time][uint32 input ack]: only on rooms with Colyseus inputs
            if code == ROOM_DATA_BYTES:
                if is_string(frame, at):
                    kind, at = decode_string(frame, at)
                else:
                    kind, at = decode_number(frame, at)
                if kind != ENVELOPE_MESSAGE_TYPE:
                    continue
                envelope = pb.Envelope()
                envelope.ParseFromString(bytes(frame[at:]))
                if envelope.WhichOneof("body") == "ping":
                    # Every room answers Ping with Pong; a room that pings us gets the same.
                    reply = pb.Envelope(correlation_id=envelope.correlation_id)
                    reply.pong.client_time_ms = envelope.ping.client_time_ms
                    reply.pong.server_time_ms = time.time() * 1000
                    await self.send(reply)
                    continue
                return envelope
            if code == ERROR:
                return self._error_frame(frame)
            if code == LEAVE_ROOM:
                # The room asks us to leave (as the Colyseus SDK does, answer with a leave).
                await self.ws.send(bytes([LEAVE_ROOM]))
                continue
            if code == PING:
                continue
            # ROOM_STATE, ROOM_STATE_PATCH, ROOM_DATA (msgpack), ROOM_RESPONSE: not used here.

    async def leave(self, timeout=5.0):
        """A consented leave: LEAVE_ROOM, then the room closes the socket (4000). Returns the close code."""
        try:
            await self.ws.send(bytes([LEAVE_ROOM]))
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        except asyncio.TimeoutError:
            await self.ws.close()
        except _websockets().exceptions.ConnectionClosed:
            pass
        return self.ws.close_code

    async def close(self):
        await self.ws.close()

# ---------------------------------------------------------------------------------------
# Device channel (device.proto)
# ---------------------------------------------------------------------------------------

PROOF_CONTEXT = "tsunagi-device-v1"
GATEWAY_PROOF_CONTEXT = "tsunagi-gateway-v1"
CHANNEL_CONTEXT = "tsunagi-channel-v1"
SEQ_TAG = (2 << 3) | 1   # Envelope.channel_seq, fixed64
MAC_TAG = (3 << 3) | 2   # Envelope.channel_mac, bytes
MAC_BYTES = 16
SEAL_BYTES = 1 + 8 + 2 + MAC_BYTES


def prove_challenge(secret, device_id, nonce, server_time_ms):
    """DeviceHello.signed_challenge.signature: HMAC-SHA256(secret, "tsunagi-device-v1|id|nonce|time"), hex."""
    data = f"{PROOF_CONTEXT}|{device_id}|{nonce}|{int(server_time_ms)}".encode()
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def prove_gateway(secret, device_id, adapter_nonce, gateway_nonce):
    """DeviceWelcome.gateway_proof: HMAC-SHA256(secret, "tsunagi-gateway-v1|id|adapter_nonce|nonce"), hex."""
    data = f"{GATEWAY_PROOF_CONTEXT}|{device_id}|{adapter_nonce}|{gateway_nonce}".encode()
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def hkdf_sha256(ikm, salt, info, length=32):
    """RFC 5869 HKDF with SHA-256."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


class ChannelSeal:
    """
    The seal of one connection, adapter side (device.proto, "Channel proof and MAC"):

        frame = envelope || 0x11 || seq (8 bytes LE) || 0x1a 0x10 || mac (16 bytes)
        mac   = HMAC-SHA256(direction key, frame before 0x1a)[:16]
        keys  = HKDF-SHA256(secret, salt = nonce || adapter_nonce (raw bytes),
                            info = "tsunagi-channel-v1|" id "|gateway-to-adapter" / "|adapter-to-gateway")
    """

    def __init__(self, secret, device_id, gateway_nonce, adapter_nonce):
        salt = bytes.fromhex(gateway_nonce) + bytes.fromhex(adapter_nonce)
        self.send_key = hkdf_sha256(secret, salt, f"{CHANNEL_CONTEXT}|{device_id}|adapter-to-gateway".encode())
        self.receive_key = hkdf_sha256(secret, salt, f"{CHANNEL_CONTEXT}|{device_id}|gateway-to-adapter".encode())
        self.sent_seq = 0
        self.received_seq = 0

    def seal(self, envelope_bytes):
        self.sent_seq += 1
        signed = envelope_bytes + bytes([SEQ_TAG]) + struct.pack("<Q", self.sent_seq)
        mac = hmac.new(self.send_key, signed, hashlib.sha256).digest()[:MAC_BYTES]
        return signed + bytes([MAC_TAG, MAC_BYTES]) + mac

    def open(self, frame):
        """(envelope bytes, None), or (None, why refused: "missing", "mac" or "replay")."""
        n = len(frame)
        if n < SEAL_BYTES or frame[n - SEAL_BYTES] != SEQ_TAG or frame[n - MAC_BYTES - 2] != MAC_TAG or frame[n - MAC_BYTES - 1] != MAC_BYTES:
            return None, "missing"
        signed = frame[:n - MAC_BYTES - 2]
        expected = hmac.new(self.receive_key, signed, hashlib.sha256).digest()[:MAC_BYTES]
        if not hmac.compare_digest(expected, frame[n - MAC_BYTES:]):
            return None, "mac"
        (seq,) = struct.unpack_from("<Q", frame, n - SEAL_BYTES + 1)
        if seq <= self.received_seq:
            return None, "replay"
        self.received_seq = seq
        return frame[:n - SEAL_BYTES], None


class GatewayProofFailed(Exception):
    """The gateway did not prove it knows the device secret: whoever answered is not our region."""


class DeviceChannel:
    """
    One adapter connection to a gateway, signed-challenge mode:

        gateway -> DeviceChallenge {nonce, server_time_ms}
        adapter -> DeviceHello {device_id, signed_challenge {nonce, signature}, adapter_nonce}
        gateway -> DeviceWelcome {gateway_proof, default_latency_budget_ms, ...} (sealed), or
                   an unsealed Error, then close 1008

    From the welcome on every frame both ways is sealed; a frame that does not open is
    dropped unread and counted (`refused`), and the connection stays.
    """

    def __init__(self, ws, seal, welcome, challenge, started_ms, challenge_received_ms):
        self.ws = ws
        self.seal = seal
        self.welcome = welcome
        self.challenge = challenge
        #: Client clock (monotonic ms) when the attempt began and when the challenge came: a first clock sample.
        self.started_ms = started_ms
        self.challenge_received_ms = challenge_received_ms
        self.refused = {"missing": 0, "mac": 0, "replay": 0}
        # Frames must leave in the order they were sealed: a sequence number below one
        # already sent is refused as a replay.
        self._sending = asyncio.Lock()

    @classmethod
    async def connect(cls, url, device_id, secret_hex, adapter_version, driver, clock_ms, timeout=10.0):
        """Connects and proves the device; returns the welcomed channel or raises TsunagiError / GatewayProofFailed."""
        websockets = _websockets()
        secret = bytes.fromhex(secret_hex)
        started = clock_ms()
        try:
            ws = await websockets.connect(url, open_timeout=timeout, compression=None, max_size=1024 * 1024, close_timeout=2)
        except websockets.exceptions.InvalidStatusCode as refusal:
            raise TsunagiError(refusal.status_code, f"{url}: WebSocket upgrade refused: HTTP {refusal.status_code}", retryable=True) from None
        except (OSError, asyncio.TimeoutError) as failure:
            raise TsunagiError(pb.ErrorCode.Value("REGION_UNAVAILABLE"), f"cannot connect to {url}: {failure}", retryable=True) from None
        try:
            return await asyncio.wait_for(cls._handshake(ws, device_id, secret, adapter_version, driver, clock_ms, started), timeout)
        except asyncio.TimeoutError:
            await ws.close()
            raise TsunagiError(pb.ErrorCode.Value("REQUEST_TIMEOUT"), f"{url}: no DeviceWelcome within {timeout} s", retryable=True) from None
        except BaseException:
            await ws.close()
            raise

    @classmethod
    async def _handshake(cls, ws, device_id, secret, adapter_version, driver, clock_ms, started):
        websockets = _websockets()

        async def next_frame():
            try:
                frame = await ws.recv()
            except websockets.exceptions.ConnectionClosed:
                raise TsunagiError(ws.close_code or 1006, f"the gateway closed the connection during the handshake ({ws.close_reason or 'no reason'})", retryable=True) from None
            if isinstance(frame, str):
                raise TsunagiError(pb.ErrorCode.Value("BAD_FRAME"), "a text frame on the device channel")
            return frame

        first = pb.Envelope()
        first.ParseFromString(await next_frame())
        if first.WhichOneof("body") == "error":
            raise error_of(first.error)
        if first.WhichOneof("body") != "device_challenge":
            raise TsunagiError(pb.ErrorCode.Value("WRONG_TYPE"), f"expected a DeviceChallenge, got {first.WhichOneof('body')}")
        challenge = first.device_challenge
        received = clock_ms()
        adapter_nonce = secrets.token_hex(32)
        hello = pb.Envelope(correlation_id=1)
        hello.device_hello.device_id = device_id
        hello.device_hello.adapter_version = adapter_version
        hello.device_hello.driver = driver
        hello.device_hello.signed_challenge.nonce = challenge.nonce
        hello.device_hello.signed_challenge.signature = prove_challenge(secret, device_id, challenge.nonce, challenge.server_time_ms)
        hello.device_hello.adapter_nonce = adapter_nonce
        await ws.send(hello.SerializeToString())
        seal = ChannelSeal(secret, device_id, challenge.nonce, adapter_nonce)
        while True:
            frame = await next_frame()
            opened, refusal = seal.open(frame)
            if opened is None:
                # Before the welcome only an Error may come unsealed (a gateway that does not know the device cannot seal).
                plain = pb.Envelope()
                plain.ParseFromString(frame)
                body = plain.WhichOneof("body")
                if body == "error":
                    raise error_of(plain.error)
                if body == "device_welcome":
                    raise GatewayProofFailed(f"a DeviceWelcome that is not sealed ({refusal}): the gateway did not prove it knows the device secret")
                continue
            envelope = pb.Envelope()
            envelope.ParseFromString(opened)
            body = envelope.WhichOneof("body")
            if body == "error":
                raise error_of(envelope.error)
            if body != "device_welcome" or envelope.correlation_id != 1:
                continue
            welcome = envelope.device_welcome
            expected = prove_gateway(secret, device_id, adapter_nonce, challenge.nonce)
            if not hmac.compare_digest(expected, welcome.gateway_proof):
                raise GatewayProofFailed("a DeviceWelcome without a valid gateway_proof: the gateway does not know the device secret")
            return cls(ws, seal, welcome, challenge, started, received)

    async def send(self, envelope):
        async with self._sending:
            await self.ws.send(self.seal.seal(envelope.SerializeToString()))

    async def receive(self):
        """The next Envelope that opens; frames that do not are counted and skipped. Raises ConnectionClosed at the end."""
        while True:
            frame = await self.ws.recv()
            if isinstance(frame, str):
                continue
            opened, refusal = self.seal.open(frame)
            if opened is None:
                self.refused[refusal] += 1
                continue
            envelope = pb.Envelope()
            envelope.ParseFromString(opened)
            return envelope

    async def close(self, code=1000, reason="adapter stopping"):
        await self.ws.close(code, reason)


if __name__ == "__main__":
    print(f"generated from {PROTO_DIR} into {generate()}")

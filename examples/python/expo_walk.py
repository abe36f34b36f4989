#!/usr/bin/python3
"""
A visitor walking an expo hall, in Python, from the contract alone (expo.proto,
envelope.proto, docs/protocol.md): joins the hall, prints its welcome, walks a short
path with VisitorMove, prints what each ExpoFrame shows (its own acked moves and the
other visitors near it), and leaves.

    examples/python/expo_walk.py --node http://127.0.0.1:2567 --dev-token

Exit code 0 after a clean walk and leave; 1 on any error (the server's code and message
on stderr); 2 on bad usage.
"""

import argparse
import asyncio
import math
import sys
import time

import tsunagi_wire as wire
from tsunagi_wire import pb


def say(line):
    print(line, flush=True)


def fail(line):
    print(f"error: {line}", file=sys.stderr, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Walk an expo hall as a visitor (Python client of Tsunagi's wire protocol).")
    parser.add_argument("--node", default="http://127.0.0.1:2567", help="a region node's http(s) base URL (default %(default)s)")
    parser.add_argument("--hall", default="expo-demo", help="the hall id to join (default %(default)s, the hall of `npm start`)")
    tokens = parser.add_mutually_exclusive_group()
    tokens.add_argument("--token", help="a visitor token (shows in the process list: prefer --token-file or TSUNAGI_TOKEN)")
    tokens.add_argument("--token-file", help="a file holding the token")
    tokens.add_argument("--dev-token", action="store_true", help="fetch a visitor token from the node's GET /dev/token (dev nodes only)")
    parser.add_argument("--name", default="py-walker", help="display name the neighbours see (default %(default)s)")
    parser.add_argument("--avatar", default="", help="avatar asset key")
    parser.add_argument("--steps", type=int, default=10, help="moves to make (default %(default)s)")
    parser.add_argument("--step-m", type=float, default=1.0, help="metres per move (default %(default)s)")
    parser.add_argument("--rate-hz", type=float, default=5.0, help="moves per second, at most the hall's max_move_hz (default %(default)s)")
    parser.add_argument("--linger", type=float, default=0.5, help="seconds to keep watching after the last move is acked (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds in all (default %(default)s)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.steps > 10_000:
        parser.error("--steps must be within 1..10000")
    if not (0 < args.rate_hz <= 100):
        parser.error("--rate-hz must be within (0, 100]")
    if not (0 < args.step_m <= 10):
        parser.error("--step-m must be within (0, 10]")
    return args


class Walk:
    def __init__(self, args, room):
        self.args = args
        self.room = room
        self.visitor_id = 0
        self.welcome = None
        #: visitor id -> (name, role): `moved` entries name nobody, `appeared` does.
        self.names = {}
        self.acked = 0
        self.last_seq = 0
        self.error = None
        #: seq -> the position that move sent.
        self.sent = {}
        self.acked_all = asyncio.Event()

    def who(self, visitor_id):
        if visitor_id == self.visitor_id:
            return f"visitor {visitor_id} (me)"
        name, role = self.names.get(visitor_id, ("?", "?"))
        return f'visitor {visitor_id} "{name}" ({role})'

    async def wait_welcome(self):
        while True:
            message = await self.room.receive()
            if isinstance(message, wire.TsunagiError):
                raise message
            body = message.WhichOneof("body")
            if body == "error":
                raise wire.error_of(message.error)
            if body == "expo_welcome":
                self.welcome = message.expo_welcome
                self.visitor_id = self.welcome.visitor_id
                w = self.welcome
                hall = w.hall
                say(f'welcome: visitor {w.visitor_id} ({w.role}) in hall "{hall.name}" ({hall.hall_id}), {hall.width:g} x {hall.height:g} m, '
                    f"{len(hall.booths)} booths, {len(hall.areas)} areas; placed at ({w.x:.1f}, {w.y:.1f}); "
                    f"tick {w.tick_ms} ms, interest radius {w.interest_radius:g} m, max {w.max_move_hz} moves/s")
                return
            # Nothing else comes before the welcome; anything that does is shown, not acted upon.
            say(f"note: {body} before the welcome")

    def on_frame(self, frame):
        for state in frame.appeared:
            self.names[state.visitor_id] = (state.name, state.role or "visitor")
            say(f"see: {self.who(state.visitor_id)} appeared at ({state.x:.1f}, {state.y:.1f})")
        for state in frame.moved:
            say(f"see: {self.who(state.visitor_id)} moved to ({state.x:.1f}, {state.y:.1f}) (its move {state.seq})")
        for visitor_id in frame.gone:
            say(f"see: {self.who(visitor_id)} gone")
            self.names.pop(visitor_id, None)
        for booth in frame.booths_near:
            say(f"booth: near {booth}")
        for booth in frame.booths_far:
            say(f"booth: far from {booth}")
        for area in frame.areas_entered:
            say(f"area: entered {area}")
        for area in frame.areas_left:
            say(f"area: left {area}")
        if frame.ack_seq > self.acked:
            self.acked = frame.ack_seq
            x, y = self.sent.get(frame.ack_seq, (math.nan, math.nan))
            say(f"me: move {frame.ack_seq} applied, at ({x:.1f}, {y:.1f})")
            if self.last_seq and self.acked >= self.last_seq:
                self.acked_all.set()

    async def listen(self):
        """Every frame, error and notice until the room closes or an error ends the walk."""
        while True:
            message = await self.room.receive()
            if isinstance(message, wire.TsunagiError):
                # A Colyseus room error: the same refusal also comes as an Error envelope.
                self.error = self.error or message
                self.acked_all.set()
                return
            body = message.WhichOneof("body")
            if body == "expo_frame":
                self.on_frame(message.expo_frame)
            elif body == "error":
                self.error = self.error or wire.error_of(message.error)
                self.acked_all.set()
                return
            elif body == "announcement":
                say(f"announcement: {message.announcement.text}")
            elif body == "chat_message":
                say(f"chat: {message.chat_message.from_name}: {message.chat_message.text}")
            elif body == "zone_handoff":
                # Following a zone handoff is what the TypeScript SDK's ExpoSession does; this walker does not.
                say(f"note: walked into zone {message.zone_handoff.zone_id}; this example does not follow zone handoffs")

    async def walk(self):
        w = self.welcome
        width, height = w.hall.width, w.hall.height
        x, y = w.x, w.y
        # North, unless the path would leave the hall: then south.
        heading = math.pi / 2 if y + self.args.steps * self.args.step_m <= height else -math.pi / 2
        rate = min(self.args.rate_hz, w.max_move_hz or self.args.rate_hz)
        say(f"walk: {self.args.steps} moves of {self.args.step_m:g} m heading {'north' if heading > 0 else 'south'} at {rate:g} moves/s")
        for step in range(1, self.args.steps + 1):
            if self.error:
                return
            y = min(height, max(0.0, y + math.sin(heading) * self.args.step_m))
            x = min(width, max(0.0, x))
            move = pb.Envelope()
            move.visitor_move.seq = step
            move.visitor_move.x = x
            move.visitor_move.y = y
            move.visitor_move.heading = heading
            move.visitor_move.sent_at_ms = time.time() * 1000
            if step == 1 and self.args.avatar:
                move.visitor_move.avatar = self.args.avatar
            self.sent[step] = (x, y)
            await self.room.send(move)
            self.last_seq = step
            await asyncio.sleep(1 / rate)
        if self.acked >= self.last_seq:
            self.acked_all.set()


async def run(args):
    if args.dev_token:
        token = await asyncio.to_thread(wire.dev_token, args.node, "visitor")
    else:
        token = wire.read_token(args.token, args.token_file)
    if not token:
        raise wire.TsunagiError(pb.ErrorCode.Value("TOKEN_MISSING"), "no token: pass --token-file FILE, set TSUNAGI_TOKEN, or --dev-token for a dev node")
    options = {"name": args.name}
    if args.avatar:
        options["avatar"] = args.avatar
    room = await wire.RoomConnection.join(args.node, "joinById", args.hall, options, token)
    say(f"joined: room {room.room_id} as session {room.session_id}")
    walk = Walk(args, room)
    listener = None
    try:
        await walk.wait_welcome()
        listener = asyncio.create_task(walk.listen())
        await walk.walk()
        # The room acks moves in its frames (ack_seq): wait for the last one, then watch a little longer.
        acked = asyncio.create_task(walk.acked_all.wait())
        done, _ = await asyncio.wait([acked, listener], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        acked.cancel()
        if listener in done and listener.exception():
            raise listener.exception()
        if walk.error:
            raise walk.error
        if walk.acked < walk.last_seq:
            raise wire.TsunagiError(pb.ErrorCode.Value("REQUEST_TIMEOUT"), f"the room acked move {walk.acked} of {walk.last_seq} within 10 s")
        await asyncio.sleep(args.linger)
        if walk.error:
            raise walk.error
    finally:
        if listener:
            listener.cancel()
        code = await room.leave()
    say(f"left: close code {code}")
    if code != wire.CLOSE_CONSENTED:
        raise wire.TsunagiError(code or 1006, f"the room closed with {code}, not {wire.CLOSE_CONSENTED} (a consented leave)")
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except wire.TsunagiError as error:
        fail(str(error))
    except wire.RoomClosed as closed:
        fail(str(closed))
    except asyncio.TimeoutError:
        fail(f"gave up after {args.timeout:g} s")
    except KeyboardInterrupt:
        fail("interrupted")
    return 1


if __name__ == "__main__":
    sys.exit(main())

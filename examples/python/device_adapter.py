#!/usr/bin/python3
"""
A device adapter in Python, written from the contract alone (device.proto, control.proto,
envelope.proto, docs/protocol.md, docs/safety.md): a small simulated excavator (the axes
and limits of the project's sim-excavator, so an operator drives it like the demo's)
that connects to a node's gateway, proves itself with its device secret, publishes its
DeviceProfile, obeys commands under the lease the room announces, acks every one, sends
telemetry, and keeps the machine safe by itself:

- a watchdog: no valid command or heartbeat within the profile's window (from the grant
  on) zeroes motion and kills the lease here until a fresh one is announced;
- an e-stop (from the room, or LeaseState.estopped) zeroes motion and refuses every
  command ESTOPPED until a supervisor's Reset, after which motion needs a fresh lease;
- a closed connection zeroes motion at once and kills the lease.

    examples/python/device_adapter.py --node http://127.0.0.1:2567 --device py-excavator --dev-enroll --open-room py-site

The secret comes from TSUNAGI_DEVICE_SECRET (as for the TypeScript adapter), or, on a dev
node, --dev-enroll enrols the device and takes the secret from the answer. Runs until
SIGINT or SIGTERM (exit 0); a refused hello exits 2, a gateway that cannot prove it knows
the secret exits 3, bad usage 2.
"""

import argparse
import asyncio
import collections
import math
import os
import signal
import sys
import time

import tsunagi_wire as wire
from tsunagi_wire import pb

ADAPTER_VERSION = "0.1.0"
DRIVER = "py-sim-excavator"
Status = pb.CommandAck.Status
APPLIED, EXPIRED, STALE, OUT_OF_BOUNDS, NO_LEASE, ESTOPPED = (Status.Value(name) for name in ("APPLIED", "EXPIRED", "STALE", "OUT_OF_BOUNDS", "NO_LEASE", "ESTOPPED"))
ORIGIN_ADAPTER = pb.CommandAck.Origin.Value("ADAPTER")
VELOCITY = pb.AxisMode.Value("AXIS_MODE_VELOCITY")
#: Close codes of the device channel (docs/protocol.md, "Device channel").
CLOSE_REDIRECTED, CLOSE_REPLACED, CLOSE_CONFLICT = 4003, 4409, 4410
#: How long an adapter refused DEVICE_CONFLICT or replaced waits before trying again.
CONFLICT_BACKOFF_S = 30.0
#: Refusals of the hello that another attempt with the same credential cannot fix.
CREDENTIAL_REFUSALS = {pb.ErrorCode.Value(name) for name in ("AUTH_FAILED", "DEVICE_UNKNOWN", "FORBIDDEN", "TOKEN_INVALID", "TOKEN_EXPIRED", "TOKEN_MISSING", "WRONG_TYPE")}


def say(line):
    print(line, flush=True)


def warn(line):
    print(line, file=sys.stderr, flush=True)

# ---------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------


class SimExcavator:
    """
    Four velocity-controlled joints and two tracks, with the sim-excavator's limits (rad,
    rad/s; m/s for the tracks). A joint stops at its position limits; the tracks move the
    base (differential drive).
    """

    #: (name, unit, min, max, max rate, initial position)
    AXES = [
        ("swing", "rad", None, None, 1.0, 0.0),
        ("boom", "rad", -0.6, 1.0, 0.4, 0.0),
        ("arm", "rad", -2.6, -0.5, 0.6, -1.5),
        ("bucket", "rad", -2.0, 1.2, 1.0, 0.0),
        ("left-track", "m", None, None, 1.5, 0.0),
        ("right-track", "m", None, None, 1.5, 0.0),
    ]
    TRACK_GAUGE_M = 2.4

    def __init__(self):
        self.position = {name: initial for name, _, _, _, _, initial in self.AXES}
        self.commanded = {name: 0.0 for name, *_ in self.AXES}
        self.velocity = {name: 0.0 for name, *_ in self.AXES}
        self.x = self.y = self.heading = 0.0

    def profile(self, device_id, watchdog_ms, latency_budget_ms, telemetry_hz):
        profile = pb.DeviceProfile(device_id=device_id, device_class=pb.DeviceClass.Value("DEVICE_CLASS_EXCAVATOR"),
                                   driver=DRIVER, vendor="Tsunagi examples", model="py-sim-excavator",
                                   watchdog_window_ms=watchdog_ms, latency_budget_ms=latency_budget_ms,
                                   telemetry_rate_hz=telemetry_hz, control_rate_hz=100)
        for name, unit, low, high, rate, _ in self.AXES:
            axis = profile.axes.add(name=name, mode=VELOCITY, unit=unit, max_rate=rate, rate_unit=f"{unit}/s")
            if low is not None:
                axis.min = low
            if high is not None:
                axis.max = high
        profile.parameters["trackGaugeM"] = self.TRACK_GAUGE_M
        return profile

    def apply(self, setpoint):
        """A complete setpoint: {axis: velocity}; an axis it leaves out goes to 0."""
        for name in self.commanded:
            self.commanded[name] = float(setpoint.get(name, 0.0))

    def zero(self):
        for name in self.commanded:
            self.commanded[name] = 0.0
            self.velocity[name] = 0.0

    @property
    def moving(self):
        return any(value != 0 for value in self.commanded.values())

    def step(self, dt):
        if dt <= 0:
            return
        for name, _, low, high, _, _ in self.AXES:
            command = self.commanded[name]
            if name.endswith("-track"):
                self.velocity[name] = command
                continue
            target = self.position[name] + command * dt
            limited = min(high, target) if high is not None else target
            limited = max(low, limited) if low is not None else limited
            # The speed achieved: the command, unless a limit stopped the joint short.
            self.velocity[name] = command if limited == target else (limited - self.position[name]) / dt
            self.position[name] = limited
        left, right = self.velocity["left-track"], self.velocity["right-track"]
        speed = (left + right) / 2
        self.heading += (right - left) / self.TRACK_GAUGE_M * dt
        self.heading = math.atan2(math.sin(self.heading), math.cos(self.heading))
        self.x += speed * math.cos(self.heading) * dt
        self.y += speed * math.sin(self.heading) * dt
        self.position["left-track"] += left * dt
        self.position["right-track"] += right * dt

# ---------------------------------------------------------------------------------------
# Clock (device.proto, "Clock sync")
# ---------------------------------------------------------------------------------------


class ServerClock:
    """The node's clock estimated from ClockSyncPing/Pong: the offset of the sample with the smallest round trip of the last 8."""

    def __init__(self):
        self.samples = collections.deque(maxlen=8)
        self.offset = time.time() * 1000 - self.client_now()

    @staticmethod
    def client_now():
        return time.monotonic() * 1000

    def server_now(self):
        return self.client_now() + self.offset

    def reset(self):
        self.samples.clear()

    def add(self, t0, t1, t2, t3):
        round_trip = (t3 - t0) - (t2 - t1)
        if not all(math.isfinite(v) for v in (t0, t1, t2, t3)) or round_trip < 0 or t3 < t0:
            return False
        self.samples.append((round_trip, ((t1 - t0) + (t2 - t3)) / 2))
        self.offset = min(self.samples)[1]
        return True

    @property
    def uncertainty_ms(self):
        return min(self.samples)[0] / 2 if self.samples else 0.0

# ---------------------------------------------------------------------------------------
# Safety: the rules of devices/adapter (CommandGuard, Watchdog, SafetyController), as the
# contract states them
# ---------------------------------------------------------------------------------------


class Safety:
    def __init__(self, device_id, machine, profile, clock):
        self.device_id = device_id
        self.machine = machine
        self.profile = profile
        self.clock = clock
        self.axes = {axis.name: index for index, axis in enumerate(profile.axes)}
        self.window_ms = profile.watchdog_window_ms or 200
        self.budget_ms = profile.latency_budget_ms
        # lease
        self.current = None
        self.dead = collections.OrderedDict()
        self.applied_seq = 0
        self.heartbeat_seq = 0
        self.last_applied = None  # (lease id, seq)
        # latches
        self.estopped = False
        self.stop_latch = None     # "watchdog", "connection closed", "adapter stopping"
        self.stopped = False
        # watchdog: armed from the grant; fed by valid commands and heartbeats
        self.armed = False
        self.last_fed = 0.0
        self.counts = collections.Counter()
        #: The safety state changed: telemetry should carry it now, not at the next sample.
        self.report_due = False

    # -- lease bookkeeping ----------------------------------------------------------------

    def _kill_current(self, cause):
        if self.current is not None:
            self.dead[self.current] = cause
            while len(self.dead) > 4096:
                self.dead.popitem(last=False)
        self.current = None
        self.applied_seq = 0
        self.heartbeat_seq = 0

    def zero(self, why):
        if self.machine.moving:
            say(f"stop: motion zeroed ({why})")
        self.machine.zero()

    # -- the link --------------------------------------------------------------------------

    def link_up(self, default_budget_ms):
        """Welcomed. Returns what the room must hear first: an e-stop that outlived the last link."""
        self.budget_ms = self.profile.latency_budget_ms or default_budget_ms or 0
        if not self.estopped:
            return []
        return [self.estop_notice("e-stop latched at the adapter across a reconnect")]

    def link_closed(self, welcomed):
        self.zero("connection closed")
        self.armed = False
        if welcomed and self.current is not None:
            lease = self.current
            self.stop_latch = "connection closed"
            self._kill_current("connection closed")
            say(f"stop: connection closed; lease {lease} ended here")

    def stop(self):
        self.stopped = True
        self.zero("adapter stopping")
        self.armed = False
        if self.current is not None:
            self.stop_latch = "adapter stopping"
            self._kill_current("adapter stopping")

    # -- the watchdog ----------------------------------------------------------------------

    def poll_watchdog(self):
        """Trips when armed and the window passed since the last feed; True on the trip."""
        if not self.armed or self.client_now() - self.last_fed <= self.window_ms:
            return False
        self.armed = False
        lease = self.current
        self.zero("watchdog")
        self.stop_latch = "watchdog"
        self._kill_current("watchdog")
        self.counts["watchdog trips"] += 1
        self.report_due = True
        say(f"watchdog: tripped, no valid command or heartbeat within {self.window_ms} ms; motion zeroed, lease {lease} ended here")
        return True

    def client_now(self):
        return self.clock.client_now()

    def feed(self):
        if self.armed:
            self.last_fed = max(self.last_fed, self.client_now())

    # -- the gateway's messages ------------------------------------------------------------

    def on_lease_state(self, state):
        if state.device_id and state.device_id != self.device_id:
            return
        if state.estopped and not self.estopped:
            self.latch_estop("the room reports an e-stop latched")
        lease = state.lease_id
        if self.stopped and lease:
            return
        if lease == "":
            had = self.current
            self._kill_current("ended")
            self.armed = False
            self.zero(f"no lease{' (' + state.cause + ')' if state.cause else ''}")
            if had:
                say(f"lease: {had} ended{' (' + state.cause + ')' if state.cause else ''}")
            return
        if lease == self.current:
            return
        if lease in self.dead:
            say(f"lease: ignored an announcement of {lease}, which has ended here")
            return
        self._kill_current("ended")
        self.current = lease
        self.stop_latch = None
        # The previous lease's setpoint must not outlive it.
        self.zero("a new lease")
        if self.estopped:
            self.armed = False
        else:
            self.armed = True
            self.last_fed = self.client_now()
        say(f"lease: {lease} granted to {state.holder_role or '?'} {state.holder_session_id}")

    def _deadline_problem(self, issued_at_ms, deadline_ms, now_ms):
        if not deadline_ms > 0:
            return "deadline_ms is not set"
        deadline = deadline_ms
        if self.budget_ms > 0:
            deadline = min(deadline_ms, min(issued_at_ms, now_ms) + self.budget_ms)
        if now_ms <= deadline:
            return None
        return f"now {now_ms:.1f} is past the deadline {deadline:.1f} (budget {self.budget_ms} ms)"

    def _resolve(self, values):
        """{axis name: value} for every profile axis named, or the OUT_OF_BOUNDS reason."""
        axes = self.profile.axes
        setpoint = {}
        for position, entry in enumerate(values):
            which = entry.WhichOneof("axis")
            if which is None:
                return f"axes[{position}]: give a name or an index"
            index = self.axes.get(entry.name, -1) if which == "name" else entry.index
            if not 0 <= index < len(axes):
                return f"axes[{position}]: no such axis ({entry.name if which == 'name' else entry.index})"
            axis = axes[index]
            if axis.name in setpoint:
                return f"axis {axis.name} is named twice"
            value = entry.value
            if not math.isfinite(value):
                return f"axis {axis.name}: value {value} is not finite"
            if axis.mode != VELOCITY or abs(value) > axis.max_rate:
                return f"axis {axis.name}: {value} beyond max_rate {axis.max_rate:g} {axis.rate_unit}"
            setpoint[axis.name] = value
        return setpoint

    def on_command(self, correlation_id, command):
        """Checks in the contract's order (ESTOPPED, NO_LEASE, EXPIRED, STALE, OUT_OF_BOUNDS); the CommandAck."""
        self.poll_watchdog()  # a command after the window must not rescue a silent lease
        received = self.clock.server_now()
        applied_at = 0.0
        status, detail = APPLIED, ""
        if command.device_id and command.device_id != self.device_id:
            status, detail = NO_LEASE, f"the command is for device {command.device_id!r}, this adapter runs {self.device_id!r}"
        elif self.estopped:
            status, detail = ESTOPPED, "an e-stop is latched on the device; a supervisor must reset it"
        elif self.current is None or command.lease_id != self.current:
            cause = self.dead.get(command.lease_id)
            status, detail = NO_LEASE, (f"lease {command.lease_id} has ended here ({cause})" if cause else "not the device's current lease")
        else:
            problem = self._deadline_problem(command.issued_at_ms, command.deadline_ms, received)
            if problem:
                status, detail = EXPIRED, problem
            elif not command.seq > self.applied_seq:
                status, detail = STALE, f"seq {command.seq} is not above {self.applied_seq}, the last applied under this lease"
            else:
                setpoint = self._resolve(command.axes)
                if isinstance(setpoint, str):
                    status, detail = OUT_OF_BOUNDS, setpoint
                else:
                    self.applied_seq = command.seq
                    self.last_applied = (command.lease_id, command.seq)
                    was_moving = self.machine.moving
                    self.machine.apply(setpoint)
                    if self.machine.moving and not was_moving:
                        say(f"move: {', '.join(f'{k} {v:g}' for k, v in setpoint.items() if v)} (lease {command.lease_id}, seq {command.seq})")
                    elif was_moving and not self.machine.moving:
                        say(f"move: stopped by command (lease {command.lease_id}, seq {command.seq})")
                    applied_at = self.clock.server_now()
                    self.feed()
        self.counts[Status.Name(status)] += 1
        reply = pb.Envelope(correlation_id=correlation_id)
        ack = reply.command_ack
        ack.device_id = command.device_id or self.device_id
        ack.lease_id = command.lease_id
        ack.seq = command.seq
        ack.status = status
        ack.origin = ORIGIN_ADAPTER
        ack.detail = detail
        ack.issued_at_ms = command.issued_at_ms
        ack.received_at_ms = received
        ack.applied_at_ms = applied_at
        ack.one_way_latency_ms = (applied_at or received) - command.issued_at_ms if command.issued_at_ms > 0 else 0
        ack.clock_uncertainty_ms = self.clock.uncertainty_ms
        return reply

    def on_action(self, correlation_id, action):
        """This machine offers no actions: the checks, then OUT_OF_BOUNDS."""
        self.poll_watchdog()
        if self.estopped:
            status, detail = ESTOPPED, "an e-stop is latched on the device"
        elif self.current is None or action.lease_id != self.current:
            status, detail = NO_LEASE, "not the device's current lease"
        else:
            problem = self._deadline_problem(action.issued_at_ms, action.deadline_ms, self.clock.server_now())
            status, detail = (EXPIRED, problem) if problem else (OUT_OF_BOUNDS, f"the device offers no action {action.action[:32]!r} (it has none)")
        reply = pb.Envelope(correlation_id=correlation_id)
        result = reply.action_result
        result.device_id = self.device_id
        result.action = action.action[:32]
        result.status = status
        result.origin = ORIGIN_ADAPTER
        result.detail = detail
        return reply

    def on_heartbeat(self, heartbeat):
        """Feeds the watchdog when under the current lease, newer than the last, and sent within the window."""
        self.poll_watchdog()
        if self.estopped or self.current is None or heartbeat.lease_id != self.current:
            return
        if heartbeat.device_id and heartbeat.device_id != self.device_id:
            return
        if not heartbeat.seq > self.heartbeat_seq:
            return
        age = self.clock.server_now() - heartbeat.sent_at_ms
        if not -self.window_ms <= age <= self.window_ms:
            return  # a delayed heartbeat proves nothing
        self.heartbeat_seq = heartbeat.seq
        self.feed()

    def on_estop(self, estop):
        # When in doubt, stop: an e-stop on this device's channel stops it whatever it names.
        self.latch_estop(estop.reason or "e-stop", estop.raised_by)

    def latch_estop(self, reason, raised_by=""):
        already = self.estopped
        lease = self.current
        self.zero("e-stop")
        self.estopped = True
        self._kill_current("estop")
        self.armed = False
        if not already:
            self.counts["e-stops"] += 1
            say(f"estop: latched ({reason}{', by ' + raised_by if raised_by else ''}); motion zeroed{', lease ' + lease + ' ended' if lease else ''}; commands refused until a reset")

    def on_reset(self, reset):
        if reset.device_id and reset.device_id != self.device_id:
            return
        if not self.estopped:
            say("reset: ignored, no e-stop is latched here")  # it must not end a lease
            return
        self.estopped = False
        self._kill_current("reset")
        self.last_applied = None
        self.armed = False
        self.zero("e-stop reset")
        say(f"reset: e-stop cleared by {reset.by or 'a supervisor'}; motion needs a fresh lease")

    def estop_notice(self, reason):
        notice = pb.Envelope()
        notice.estop.device_id = self.device_id
        notice.estop.reason = reason
        notice.estop.raised_by = f"device:{self.device_id}"
        notice.estop.raised_at_ms = self.clock.server_now()
        return notice

    def telemetry(self):
        envelope = pb.Envelope()
        t = envelope.telemetry
        t.device_id = self.device_id
        t.sampled_at_ms = self.clock.server_now()
        t.pose.x, t.pose.y, t.pose.yaw = self.machine.x, self.machine.y, self.machine.heading
        for name, *_ in self.machine.AXES:
            t.joints.add(name=name, position=self.machine.position[name], velocity=self.machine.velocity[name])
        t.estopped = self.estopped
        # Any stop latch (watchdog, link loss, stopping): the lease it ended is dead here.
        t.watchdog_tripped = self.stop_latch is not None
        if self.last_applied:
            t.lease_id, t.last_applied_seq = self.last_applied
        return envelope

# ---------------------------------------------------------------------------------------
# The adapter: connections, loops
# ---------------------------------------------------------------------------------------


class Adapter:
    def __init__(self, args, secret):
        self.args = args
        self.secret = secret
        self.machine = SimExcavator()
        self.clock = ServerClock()
        self.profile = self.machine.profile(args.device, args.watchdog_ms, args.latency_budget_ms, args.telemetry_hz)
        self.safety = Safety(args.device, self.machine, self.profile, self.clock)
        self.channel = None
        self.stopping = asyncio.Event()
        self.redirect_url = None
        self.ignored = collections.Counter()
        #: The ClockSyncPing awaiting its pong (0: none) and its arrival.
        self.pending_ping = 0
        self.pong_arrived = asyncio.Event()

    async def send(self, envelope):
        channel = self.channel
        if channel is None:
            return
        try:
            await channel.send(envelope)
        except Exception:  # closed under us: the receiver sees the close
            pass

    async def report(self):
        await self.send(self.safety.telemetry())

    async def physics(self):
        """The machine's 10 ms loop, for the whole run: moves the simulation, polls the watchdog, sends telemetry."""
        period = min(0.01, self.safety.window_ms / 4000)
        telemetry_period = 1 / self.args.telemetry_hz
        last = time.monotonic()
        next_telemetry = last
        while not self.stopping.is_set():
            await asyncio.sleep(period)
            now = time.monotonic()
            self.machine.step(now - last)
            last = now
            self.safety.poll_watchdog()
            if self.safety.report_due:
                # A trip (here, or on a late command or heartbeat): the room ends the lease on seeing it.
                self.safety.report_due = False
                await self.report()
            elif now >= next_telemetry:
                next_telemetry = max(next_telemetry + telemetry_period, now)
                await self.report()

    async def clock_sync(self, channel):
        """ClockSyncPings one at a time: eight rounds 100 ms apart, then one every 5 s; three unanswered rounds cut the link."""
        rounds = 0
        silent = 0
        correlation = 1000
        while True:
            correlation += 1
            self.pending_ping = correlation
            self.pong_arrived = asyncio.Event()
            ping = pb.Envelope(correlation_id=correlation)
            ping.clock_sync_ping.t0_ms = self.clock.client_now()
            await channel.send(ping)
            interval = 0.1 if rounds < 8 else 5.0
            rounds += 1
            try:
                await asyncio.wait_for(self.pong_arrived.wait(), interval)
                silent = 0
                await asyncio.sleep(interval)
            except asyncio.TimeoutError:
                silent += 1
                if silent >= 3:
                    warn("link: no answer to 3 clock pings in a row; the link is dead, reconnecting")
                    await channel.ws.close(1001, "link dead")
                    return

    async def receive(self, channel):
        while True:
            envelope = await channel.receive()
            body = envelope.WhichOneof("body")
            cid = envelope.correlation_id
            safety = self.safety
            if body == "control_command":
                await self.send(safety.on_command(cid, envelope.control_command))
            elif body == "heartbeat":
                safety.on_heartbeat(envelope.heartbeat)
            elif body == "lease_state":
                safety.on_lease_state(envelope.lease_state)
                await self.report()
            elif body == "estop":
                safety.on_estop(envelope.estop)
                await self.report()
            elif body == "reset":
                safety.on_reset(envelope.reset)
                await self.report()
            elif body == "device_action":
                await self.send(safety.on_action(cid, envelope.device_action))
            elif body == "clock_sync_pong":
                if cid and cid == self.pending_ping:
                    pong = envelope.clock_sync_pong
                    self.clock.add(pong.t0_ms, pong.t1_ms, pong.t2_ms, self.clock.client_now())
                    self.pending_ping = 0
                    self.pong_arrived.set()
            elif body == "ping":
                reply = pb.Envelope(correlation_id=cid)
                reply.pong.client_time_ms = envelope.ping.client_time_ms
                reply.pong.server_time_ms = self.clock.server_now()
                await self.send(reply)
            elif body == "gateway_redirect":
                redirect = envelope.gateway_redirect
                if redirect.url.startswith(("ws://", "wss://")):
                    self.redirect_url = redirect.url
                    say(f"link: redirected to {redirect.url} ({redirect.reason})")
            elif body == "error":
                error = wire.error_of(envelope.error)
                warn(f"gateway error: {error}")
            else:
                self.ignored[body] += 1
                if self.ignored[body] == 1:
                    say(f"note: ignored {body} (not supported by this example)")

    async def session(self, channel):
        """One welcomed connection, until it closes. Returns the close code."""
        welcome = channel.welcome
        self.channel = channel
        self.clock.reset()
        self.clock.add(channel.started_ms, channel.challenge.server_time_ms, channel.challenge.server_time_ms, channel.challenge_received_ms)
        budget = self.profile.latency_budget_ms or welcome.default_latency_budget_ms
        say(f"welcome: device {welcome.device_id} on node {welcome.node_id} (region {welcome.region_id}); "
            f"watchdog {self.safety.window_ms} ms, latency budget {budget or 'none'} ms{'' if self.profile.latency_budget_ms else ' (the server default)'}")
        for notice in self.safety.link_up(welcome.default_latency_budget_ms):
            await channel.send(notice)
        await channel.send(pb.Envelope(correlation_id=2, device_profile=self.profile))
        await self.report()
        tasks = [asyncio.create_task(self.receive(channel)), asyncio.create_task(self.clock_sync(channel))]
        stop = asyncio.create_task(self.stopping.wait())
        try:
            await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*tasks, stop]:
                task.cancel()
            self.channel = None
            # Whatever closed it, the machine stops now: a new node has no lease for us.
            self.safety.link_closed(welcomed=True)
            try:
                if self.stopping.is_set():
                    self.safety.stop()
                    await channel.send(self.safety.telemetry())
                    await channel.close(1000, "adapter stopping")
                else:
                    await channel.close(1000, "closing")
            except Exception:
                pass  # closed already
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() and not isinstance(task.exception(), wire._websockets().exceptions.ConnectionClosed):
                warn(f"link: {type(task.exception()).__name__}: {task.exception()}")
        code = channel.ws.close_code
        if not self.stopping.is_set():
            say(f"link: closed (code {code}{': ' + channel.ws.close_reason if channel.ws.close_reason else ''}); motion zeroed")
        if sum(channel.refused.values()):
            warn(f"link: dropped {dict(channel.refused)} frames that did not open (no seal, wrong MAC, replayed)")
        return code

    async def run(self):
        physics = asyncio.create_task(self.physics())
        backoff = 0.5
        url = None
        try:
            while not self.stopping.is_set():
                if url is None:
                    try:
                        url = self.args.gateway or (await asyncio.to_thread(wire.gateway_endpoint, self.args.node))["url"]
                    except wire.TsunagiError as error:
                        warn(f"link: cannot ask {self.args.node} for its gateway: {error}")
                        await self.pause(backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
                say(f"link: connecting to {url}")
                try:
                    channel = await wire.DeviceChannel.connect(url, self.args.device, self.secret, ADAPTER_VERSION, DRIVER, self.clock.client_now)
                except wire.GatewayProofFailed as failure:
                    warn(f"error: [GATEWAY_PROOF_FAILED] {url}: {failure}; nothing it sent was obeyed")
                    return 3
                except wire.TsunagiError as error:
                    if error.code in CREDENTIAL_REFUSALS:
                        warn(f"error: the gateway refused device {self.args.device}: {error}")
                        return 2
                    if error.code in (pb.ErrorCode.Value("DEVICE_CONFLICT"), CLOSE_CONFLICT, CLOSE_REPLACED):
                        warn(f"link: {error}; another adapter of {self.args.device} answers: stop one of the two; waiting {CONFLICT_BACKOFF_S:g} s")
                        url = None
                        await self.pause(CONFLICT_BACKOFF_S)
                        continue
                    warn(f"link: {error}; retrying in {backoff:g} s")
                    url = self.redirect_url or None
                    await self.pause(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.5
                code = await self.session(channel)
                if self.stopping.is_set():
                    break
                if code == CLOSE_REDIRECTED and self.redirect_url:
                    url = self.redirect_url
                    continue
                self.redirect_url = None
                url = None
                if code in (CLOSE_REPLACED, CLOSE_CONFLICT):
                    warn(f"link: another adapter of {self.args.device} is connected (close {code}); waiting {CONFLICT_BACKOFF_S:g} s")
                    await self.pause(CONFLICT_BACKOFF_S)
                else:
                    await self.pause(backoff)
            return 0
        finally:
            self.safety.stop()
            self.stopping.set()
            physics.cancel()

    async def pause(self, seconds):
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def watch_parent(self, pid):
        """Stops when the process `pid` (TSUNAGI_ADAPTER_PARENT_PID) is gone, so an adapter never outlives its starter."""
        while not self.stopping.is_set():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                warn(f"parent process {pid} is gone: stopping")
                self.stopping.set()
                return
            except PermissionError:
                pass
            await self.pause(0.5)


async def open_room(node, room, device_id):
    """Dev convenience: a supervisor (dev token) opens teleop room `room` with this device, then leaves; the room stays."""
    token = await asyncio.to_thread(wire.dev_token, node, "supervisor")
    try:
        connection = await wire.RoomConnection.join(node, "create", "teleop", {"roomId": room, "devices": [device_id]}, token)
    except wire.TsunagiError as error:
        if error.code == pb.ErrorCode.Value("ROOM_CONFLICT"):
            say(f"room: teleop room {room} is open already (it drives this device only if it was opened with it)")
            return
        raise
    await connection.leave()
    say(f"room: opened teleop room {room} with device {device_id}")


def parse_args(argv):
    parser = argparse.ArgumentParser(description="A simulated excavator's adapter (Python client of Tsunagi's device channel).")
    parser.add_argument("--node", default="http://127.0.0.1:2567", help="a region node's http(s) base URL; its GET /gateway names the device endpoint (default %(default)s)")
    parser.add_argument("--gateway", help="the device endpoint itself (ws://host:port/device), instead of asking the node")
    parser.add_argument("--device", required=True, help="the enrolled device id")
    parser.add_argument("--dev-enroll", action="store_true", help="enrol the device (class excavator) on a dev node (GET /dev/device) and use the secret it answers")
    parser.add_argument("--open-room", metavar="ROOM", help="dev nodes: open teleop room ROOM with this device (as a supervisor with a dev token)")
    parser.add_argument("--telemetry-hz", type=float, default=20.0, help="telemetry rate (default %(default)s)")
    parser.add_argument("--watchdog-ms", type=int, default=200, help="the profile's watchdog window, 20-2000 (default %(default)s)")
    parser.add_argument("--latency-budget-ms", type=int, default=0, help="the profile's latency budget; 0: the server's (default)")
    args = parser.parse_args(argv)
    if not 20 <= args.watchdog_ms <= 2000:
        parser.error("--watchdog-ms must be within 20-2000")
    if not 0 < args.telemetry_hz <= 200:
        parser.error("--telemetry-hz must be within (0, 200]")
    if args.latency_budget_ms < 0:
        parser.error("--latency-budget-ms must be >= 0")
    return args


async def run(args):
    if args.dev_enroll:
        enrolled = await asyncio.to_thread(wire.dev_enroll, args.node, args.device, "excavator")
        secret = enrolled["deviceSecret"]
        say(f"enrolled: device {enrolled['deviceId']} (class {enrolled['deviceClass']}, credential version {enrolled['version']})")
    else:
        secret = (os.environ.get("TSUNAGI_DEVICE_SECRET") or "").strip()
    if len(secret) != 64 or any(c not in "0123456789abcdefABCDEF" for c in secret):
        raise wire.TsunagiError(pb.ErrorCode.Value("TOKEN_MISSING"), "no device secret: set TSUNAGI_DEVICE_SECRET to the 64 hex characters of the enrolment, or use --dev-enroll on a dev node")
    if args.open_room:
        await open_room(args.node, args.open_room, args.device)
    adapter = Adapter(args, secret)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, adapter.stopping.set)
    parent = os.environ.get("TSUNAGI_ADAPTER_PARENT_PID")
    if parent and parent.isdigit():
        asyncio.create_task(adapter.watch_parent(int(parent)))
    code = await adapter.run()
    say(f"stopped: motion zeroed; {dict(adapter.safety.counts)}")
    return code


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(run(args))
    except wire.TsunagiError as error:
        warn(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())

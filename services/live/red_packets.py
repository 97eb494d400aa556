"""Red-packet rain (红包雨) in a live room: staff schedule it, members grab packets while it falls.

A rain's packets are split when it is scheduled (`split_packets`: random above a minimum, summing exactly to
the total) and written as rows. While the rain falls Redis hands them out: one Lua script per grab pops a
packet, records the member (each member once per rain) and writes a journal entry, all atomically, so across
any number of processes each packet goes out once and no member gets two. The prize is then credited in one
database transaction: the packet row takes its member (guarded: only a packet nobody holds yet) and the points
ledger its change, keyed by the packet, so it happens once. The journal entry is removed after that commit; an
entry left behind (the process died between grab and credit, or the database failed) is credited by the
sweeper job `credit_stranded_grabs`, through the same guarded transaction, so a grab is credited exactly once
whoever gets there first.

Redis holds a rain's packets only while it matters; they are loaded from the rows the first time a grab (or the
sweeper starting the rain) finds them missing, packets already held by a member staying held. The rows are the
record: the unique (rain, member) pair refuses a second packet for one member even if Redis lost its memory.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count, Sum
from tortoise.transactions import in_transaction

from infra.clock import now as clock_now
from infra.redis import REDIS_ERRORS, get_redis
from infra.transactions import retry_when_busy
from models import (
    Coupon,
    CouponSource,
    CouponStatus,
    PointsReason,
    RainStatus,
    RedPacket,
    RedPacketPrize,
    RedPacketRain,
)
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.live import events
from services.live.rooms import room_exists
from services.loyalty.points import MAX_DELTA, apply_points_change
from services.marketing.coupons.wallet import grant_in_transaction
from services.orders.sweeper import register_sweep_job

log = logging.getLogger("lianmall.red_packets")

MAX_PACKETS = 10_000
# A packet can never hold more than the ledger takes in one change.
MAX_TOTAL = MAX_DELTA
MAX_DURATION = timedelta(hours=2)
TITLE_MAX = 64
# A journal entry this old is the sweeper's to credit: the grabbing request had time enough to do it itself.
STRANDED_AFTER = timedelta(seconds=2)
# Redis keeps a rain's keys this long after it ends (the sweeper settles it well before).
KEEP_AFTER_END = timedelta(days=1)
SWEEP_BATCH = 50

# --- the split ----------------------------------------------------------------------------------------------


def split_packets(total: int, count: int, minimum: int = 1, rng: random.Random | None = None) -> list[int]:
    """`count` packets of at least `minimum` each that sum exactly to `total`.

    What is above the minimums is cut at `count - 1` uniformly random points (with repetition), so every
    packet's share is drawn alike and the order says nothing about size. Raises ValueError when the minimums
    alone exceed the total.
    """
    if count < 1 or minimum < 0 or count * minimum > total:
        raise ValueError(f"cannot split {total} into {count} packets of at least {minimum}")
    rng = rng or random.SystemRandom()
    spare = total - count * minimum
    cuts = sorted(rng.randint(0, spare) for _ in range(count - 1))
    edges = [0, *cuts, spare]
    return [minimum + edges[i + 1] - edges[i] for i in range(count)]


# --- scheduling ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RainDraft:
    room_id: int
    total_amount: int
    packet_count: int
    starts_at: datetime
    duration_seconds: int
    min_amount: int = 1
    title: str = ""
    prize: RedPacketPrize = RedPacketPrize.POINTS
    # A COUPON rain: the template handed out, one coupon per packet (the total is then the packet count).
    coupon_id: int | None = None


def _check_draft(draft: RainDraft, at: datetime) -> None:
    problems: list[DomainError] = []

    def bad(field_name: str, message: str) -> None:
        problems.append(DomainError(ErrorCode.BAD_USER_INPUT, message, f"input.{field_name}"))

    if len(draft.title) > TITLE_MAX:
        bad("title", f"A title has at most {TITLE_MAX} characters")
    if draft.prize == RedPacketPrize.COUPON and draft.coupon_id is None:
        bad("couponId", "A coupon rain names the coupon it hands out")
    if draft.prize == RedPacketPrize.POINTS and draft.coupon_id is not None:
        bad("couponId", "A points rain hands out no coupon")
    if not 1 <= draft.total_amount <= MAX_TOTAL:
        bad("totalAmount", f"The total is 1 to {MAX_TOTAL} points")
    count_ok = False
    if not 1 <= draft.packet_count <= MAX_PACKETS:
        bad("packetCount", f"A rain has 1 to {MAX_PACKETS} packets")
    elif draft.packet_count > draft.total_amount >= 1:
        bad("packetCount", f"{draft.packet_count} packets cannot each hold a point of {draft.total_amount}")
    else:
        count_ok = True
    if draft.min_amount < 1:
        bad("minAmount", "Every packet holds at least 1 point")
    elif count_ok and draft.packet_count * draft.min_amount > draft.total_amount >= 1:
        bad(
            "minAmount",
            f"{draft.packet_count} packets of at least {draft.min_amount} need more than the total "
            f"{draft.total_amount}",
        )
    if not 1 <= draft.duration_seconds <= MAX_DURATION.total_seconds():
        bad("durationSeconds", f"A rain lasts 1 to {int(MAX_DURATION.total_seconds())} seconds")
    elif draft.starts_at + timedelta(seconds=draft.duration_seconds) <= at:
        bad("startsAt", "The rain would be over before it is scheduled")
    if problems:
        raise ValidationErrors(problems)


async def schedule_rain(draft: RainDraft, staff_id: int | None = None) -> RedPacketRain:
    """Schedule a rain: check the setup (every problem at once, as field errors under `input`), split its
    packets and write the rain with them in one transaction. A rain that starts in the past falls at once."""
    at = clock_now()
    _check_draft(draft, at)
    if not await room_exists(draft.room_id):
        raise DomainError(ErrorCode.NOT_FOUND, "No such live room", "input.roomId")
    if draft.coupon_id is not None:
        await _check_coupon(draft)
    amounts = split_packets(draft.total_amount, draft.packet_count, draft.min_amount)

    async def write() -> RedPacketRain:
        async with in_transaction():
            rain = await RedPacketRain.create(
                room_id=draft.room_id,
                title=draft.title,
                prize=draft.prize,
                coupon_id=draft.coupon_id,
                total_amount=draft.total_amount,
                min_amount=draft.min_amount,
                packet_count=draft.packet_count,
                starts_at=draft.starts_at,
                ends_at=draft.starts_at + timedelta(seconds=draft.duration_seconds),
                created_by_id=staff_id,
            )
            await RedPacket.bulk_create(
                [RedPacket(rain_id=rain.id, index=i, amount=a) for i, a in enumerate(amounts)],
                batch_size=1000,
            )
            return rain

    rain = await retry_when_busy(write)
    if rain.starts_at <= at:
        await _start(rain, at)
        rain = await get_rain(rain.id)
    return rain


async def _check_coupon(draft: RainDraft) -> None:
    coupon = await Coupon.get_or_none(id=draft.coupon_id)
    if coupon is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such coupon", "input.couponId")
    if coupon.status != CouponStatus.ACTIVE:
        raise DomainError(ErrorCode.CONFLICT, "This coupon is no longer handed out", "input.couponId")
    left = coupon.total_quantity - coupon.issued
    if left < draft.packet_count:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"Only {left} of this coupon are left to hand out", "input.packetCount"
        )


async def get_rain(rain_id: int, field_name: str = "id") -> RedPacketRain:
    rain = await RedPacketRain.get_or_none(id=rain_id)
    if rain is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such red-packet rain", field_name)
    return rain


async def stop_rain(rain_id: int) -> RedPacketRain:
    """Stop a rain now: a scheduled one is cancelled, a falling one ends (grabs already made are credited)."""
    at = clock_now()
    rain = await get_rain(rain_id)
    if rain.status == RainStatus.SCHEDULED and rain.starts_at <= at:
        await _start(rain, at)  # it was falling already, the sweeper had not said so yet
        rain = await get_rain(rain_id)
    if rain.status == RainStatus.SCHEDULED:
        moved = await RedPacketRain.filter(id=rain_id, status=RainStatus.SCHEDULED).update(
            status=RainStatus.CANCELLED, ended_at=at, ends_at=min(rain.ends_at, at)
        )
    elif rain.status == RainStatus.LIVE:
        moved = await RedPacketRain.filter(id=rain_id, status=RainStatus.LIVE).update(
            status=RainStatus.ENDED, ended_at=at, ends_at=min(rain.ends_at, at)
        )
    else:
        raise DomainError(ErrorCode.CONFLICT, f"The rain is already {rain.status.value.lower()}", "id")
    if not moved:
        raise DomainError(ErrorCode.CONFLICT, "The rain changed meanwhile; look again", "id")
    # Grabs stop at once on every process: the script reads the end from Redis.
    try:
        await get_redis().register_script(_STOP)(
            keys=[_keys(rain_id).meta], args=[_ms(min(rain.ends_at, at))]
        )
    except REDIS_ERRORS:
        log.warning("rain %s stopped, but Redis did not hear it: grabs stop at its scheduled end", rain_id)
    stopped = await get_rain(rain_id)
    await _announce_end(stopped)
    return stopped


# --- Redis: loading and grabbing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    meta: str
    left: str
    who: str
    journal: str

    @property
    def all(self) -> list[str]:
        return [self.meta, self.left, self.who, self.journal]


def _keys(rain_id: int) -> _Keys:
    # One hash tag per rain, so a Redis Cluster keeps a rain's keys (and its scripts) on one node.
    base = f"rp:{{{rain_id}}}"
    return _Keys(f"{base}:meta", f"{base}:left", f"{base}:who", f"{base}:journal")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# KEYS: meta, left, who. ARGV: starts_ms, ends_ms, ttl_s, n_free, free packets..., then member/packet pairs.
# Loads a rain once: a second loader (another process) finds meta there and changes nothing.
_LOAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'starts', ARGV[1], 'ends', ARGV[2])
local free = tonumber(ARGV[4])
for i = 5, 4 + free do redis.call('RPUSH', KEYS[2], ARGV[i]) end
for i = 5 + free, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3])) end
return 1
"""

# KEYS: meta, left, who, journal. ARGV: member, now_ms, ttl_s.
# {1, packet}: grabbed now; {2, packet}: this member's packet from before; {0}: none left;
# {-1}: not loaded; {-2}: not started; {-3}: over. A packet is "index:amount".
_GRAB = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local mine = redis.call('HGET', KEYS[3], ARGV[1])
if mine then return {2, mine} end
local now = tonumber(ARGV[2])
if now < tonumber(redis.call('HGET', KEYS[1], 'starts')) then return {-2} end
if now >= tonumber(redis.call('HGET', KEYS[1], 'ends')) then return {-3} end
local packet = redis.call('LPOP', KEYS[2])
if not packet then return {0} end
redis.call('HSET', KEYS[3], ARGV[1], packet)
redis.call('HSET', KEYS[4], packet, ARGV[1] .. ':' .. ARGV[2])
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[3]))
return {1, packet}
"""

# KEYS: journal. ARGV: packet, "member:". Removes the packet's entry only if it is this member's grab.
_FORGET = """
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if entry and string.sub(entry, 1, string.len(ARGV[2])) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


# KEYS: meta. ARGV: the new end. Only a loaded rain has a meta to change (one not loaded is read afresh).
_STOP = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'ends', ARGV[1]) end
return 0
"""


def _ttl(rain: RedPacketRain, at: datetime) -> int:
    return max(60, int((rain.ends_at + KEEP_AFTER_END - at).total_seconds()))


async def load_rain(rain: RedPacketRain) -> bool:
    """Put a rain's packets into Redis unless they are there already; True if this call loaded them."""
    rows = await RedPacket.filter(rain_id=rain.id).order_by("index").values("index", "amount", "member_id")
    free = [f"{r['index']}:{r['amount']}" for r in rows if r["member_id"] is None]
    held = [
        item
        for r in rows
        if r["member_id"] is not None
        for item in (str(r["member_id"]), f"{r['index']}:{r['amount']}")
    ]
    keys = _keys(rain.id)
    script = get_redis().register_script(_LOAD)
    loaded = await script(
        keys=[keys.meta, keys.left, keys.who],
        args=[_ms(rain.starts_at), _ms(rain.ends_at), _ttl(rain, clock_now()), len(free), *free, *held],
    )
    return bool(loaded)


@dataclass(frozen=True)
class Grab:
    rain_id: int
    member_id: int
    index: int
    amount: int
    # False when the member had grabbed this packet before (a retried grab answers the same packet).
    new: bool
    credited: bool


def _packet(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    index, amount = text.split(":")
    return int(index), int(amount)


async def take_packet(rain_id: int, member_id: int) -> tuple[int, int, bool]:
    """The Redis half of a grab: (index, amount, new) of this member's packet. Raises the rain's refusal.

    Atomic across processes: one script pops a packet, records the member and journals the grab. A rain Redis
    holds costs no database read; one it does not is read and loaded first (by whichever process asks).
    """
    keys = _keys(rain_id)
    grab = get_redis().register_script(_GRAB)
    at = clock_now()
    ttl = int(KEEP_AFTER_END.total_seconds())
    try:
        answer = await grab(keys=keys.all, args=[member_id, _ms(at), ttl])
        if int(answer[0]) == -1:
            rain = await get_rain(rain_id, "rainId")
            if rain.status == RainStatus.CANCELLED or at >= rain.ends_at:
                raise DomainError(ErrorCode.RAIN_OVER, "The rain is over", "rainId")
            if rain.status == RainStatus.SCHEDULED and rain.starts_at <= at:
                await _start(rain, at)  # the sweeper has not started it yet: the first grab does
            await load_rain(rain)
            answer = await grab(keys=keys.all, args=[member_id, _ms(at), _ttl(rain, at)])
    except REDIS_ERRORS as exc:
        raise DomainError(
            ErrorCode.SERVICE_UNAVAILABLE, "Red packets cannot be grabbed right now; try again", "rainId"
        ) from exc
    code = int(answer[0])
    if code in (1, 2):
        index, amount = _packet(answer[1])
        return index, amount, code == 1
    if code == 0:
        raise DomainError(ErrorCode.RAIN_EMPTY, "Every packet of this rain is taken", "rainId")
    if code == -2:
        raise DomainError(ErrorCode.RAIN_NOT_STARTED, "The rain has not started yet", "rainId")
    raise DomainError(ErrorCode.RAIN_OVER, "The rain is over", "rainId")


async def grab_packet(rain_id: int, member_id: int) -> Grab:
    """A member grabs a packet of a falling rain: at most one per member per rain, each packet once.

    The prize is credited before this returns when the database answers; otherwise the grab stays journalled
    in Redis and the sweeper credits it (`credited` False). A repeated grab answers the member's packet again.
    Raises RAIN_NOT_STARTED, RAIN_OVER, RAIN_EMPTY, NOT_FOUND, or SERVICE_UNAVAILABLE while Redis is away.
    """
    index, amount, new = await take_packet(rain_id, member_id)
    try:
        credited = await credit_grab(rain_id, index, member_id, clock_now())
        if new and credited:
            # A rain loaded before its start falls without the sweeper: its first winner announces it.
            rain = await get_rain(rain_id, "rainId")
            if rain.status == RainStatus.SCHEDULED:
                await _start(rain, clock_now())
    except PrizeRefused:
        raise
    except Exception:
        # The journal keeps the grab: the sweeper credits it once the database answers again.
        log.exception("red packet %s:%s of member %s left to the sweeper", rain_id, index, member_id)
        credited = False
    return Grab(rain_id, member_id, index, amount, new, credited)


async def credit_grab(rain_id: int, index: int, member_id: int, grabbed_at: datetime) -> bool:
    """Credit one grabbed packet to its member, once: True when it is credited (now or before).

    The packet row takes its member only while it has none, in the transaction that adds the points (keyed by
    the packet), so concurrent creditors (the grabbing request, sweepers on other processes) credit it once.
    The journal entry goes after the commit.
    """

    async def credit() -> bool:
        async with in_transaction():
            at = clock_now()
            packet = await RedPacket.get_or_none(rain_id=rain_id, index=index)
            if packet is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such red packet", "rainId")
            taken = await RedPacket.filter(id=packet.id, member_id=None).update(
                member_id=member_id, grabbed_at=grabbed_at, credited_at=at
            )
            if not taken:
                return await RedPacket.filter(id=packet.id, member_id=member_id).exists()
            prize, coupon_id = (
                await RedPacketRain.filter(id=rain_id).first().values_list("prize", "coupon_id")
            )
            if prize == RedPacketPrize.COUPON and coupon_id is not None:
                try:
                    await grant_in_transaction(member_id, coupon_id, CouponSource.RED_PACKET, "rainId")
                except DomainError as exc:
                    raise PrizeRefused(exc.code, exc.message, "rainId") from exc
            else:
                await apply_points_change(
                    member_id,
                    packet.amount,
                    PointsReason.RED_PACKET,
                    f"red-packet:{rain_id}:{index}",
                    note=f"红包雨 {rain_id}",
                )
            return True

    try:
        credited = await retry_when_busy(credit)
    except PrizeRefused:
        # The coupon cannot be handed to this member (they hold the most one may, or the coupon was stopped):
        # the packet goes back to the rain for someone else, and the member is told why.
        await _give_back(rain_id, index, member_id)
        raise
    except IntegrityError:
        # The member holds another packet of this rain (Redis forgot it): this one goes back to the rain.
        log.warning(
            "member %s already holds a packet of rain %s; packet %s returned", member_id, rain_id, index
        )
        await _return_packet(rain_id, index, member_id)
        return False
    if credited:
        await _forget(rain_id, index, member_id)
    else:
        log.error("red packet %s:%s grabbed by %s belongs to another member", rain_id, index, member_id)
        await _forget(rain_id, index, member_id)
    return credited


async def _forget(rain_id: int, index: int, member_id: int) -> None:
    amount = await RedPacket.filter(rain_id=rain_id, index=index).first().values_list("amount", flat=True)
    forget = get_redis().register_script(_FORGET)
    try:
        await forget(keys=[_keys(rain_id).journal], args=[f"{index}:{amount}", f"{member_id}:"])
    except REDIS_ERRORS:
        pass  # the sweeper finds the entry, sees the packet credited and removes it then


class PrizeRefused(DomainError):
    """The packet's coupon could not be granted to the member who grabbed it."""


# KEYS: left, who, journal. ARGV: packet, member. Undoes one member's grab: the packet goes back to the rain.
_GIVE_BACK = """
local entry = redis.call('HGET', KEYS[3], ARGV[1])
if not entry or string.sub(entry, 1, string.len(ARGV[2]) + 1) ~= ARGV[2] .. ':' then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
"""


async def _give_back(rain_id: int, index: int, member_id: int) -> None:
    amount = await RedPacket.filter(rain_id=rain_id, index=index).first().values_list("amount", flat=True)
    keys = _keys(rain_id)
    try:
        await get_redis().register_script(_GIVE_BACK)(
            keys=[keys.left, keys.who, keys.journal], args=[f"{index}:{amount}", member_id]
        )
    except REDIS_ERRORS:
        log.warning("packet %s:%s could not go back to the rain", rain_id, index)


async def _return_packet(rain_id: int, index: int, member_id: int) -> None:
    amount = await RedPacket.filter(rain_id=rain_id, index=index).first().values_list("amount", flat=True)
    keys = _keys(rain_id)
    try:
        await get_redis().rpush(keys.left, f"{index}:{amount}")
        await get_redis().hdel(keys.journal, f"{index}:{amount}")
    except REDIS_ERRORS:
        log.warning("packet %s:%s could not go back to the rain", rain_id, index)


def _decode(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


# --- time-driven work (the sweeper) -------------------------------------------------------------------------


async def start_due_rains(at: datetime) -> int:
    """Scheduled rains whose start has come begin to fall (loaded into Redis, announced in their room)."""
    moved = 0
    for rain in await RedPacketRain.filter(status=RainStatus.SCHEDULED, starts_at__lte=at).limit(SWEEP_BATCH):
        moved += await _start(rain, at)
    return moved


async def _start(rain: RedPacketRain, at: datetime) -> bool:
    """SCHEDULED → LIVE once its start has come (guarded: one process does it), loaded and announced."""
    if not await RedPacketRain.filter(id=rain.id, status=RainStatus.SCHEDULED, starts_at__lte=at).update(
        status=RainStatus.LIVE, started_at=at
    ):
        return False  # another process started it, or it is not time
    started = await get_rain(rain.id)
    try:
        await load_rain(started)
    except REDIS_ERRORS:
        log.warning("rain %s started while Redis is away; the first grab loads it", rain.id)
    await _announce_start(started)
    return True


async def end_due_rains(at: datetime) -> int:
    """Falling rains past their end stop (announced in their room)."""
    moved = 0
    for rain in await RedPacketRain.filter(status=RainStatus.LIVE, ends_at__lte=at).limit(SWEEP_BATCH):
        if await RedPacketRain.filter(id=rain.id, status=RainStatus.LIVE).update(
            status=RainStatus.ENDED, ended_at=at
        ):
            moved += 1
            await _announce_end(await get_rain(rain.id))
    return moved


async def credit_stranded_grabs(at: datetime) -> int:
    """Credit grabs whose journal entry outlived its request (a process died between grab and credit, or the
    database failed), and settle rains that are over with nothing left in their journal."""
    credited = 0
    rains = await RedPacketRain.filter(
        status__in=(RainStatus.LIVE, RainStatus.ENDED), settled_at__isnull=True, starts_at__lte=at
    ).limit(SWEEP_BATCH)
    for rain in rains:
        try:
            entries = await get_redis().hgetall(_keys(rain.id).journal)
        except REDIS_ERRORS:
            continue
        for packet, entry in entries.items():
            index, _ = _packet(packet)
            member, grabbed_ms = (int(part) for part in _decode(entry).split(":"))
            grabbed_at = datetime.fromtimestamp(grabbed_ms / 1000, tz=at.tzinfo)
            if at - grabbed_at < STRANDED_AFTER:
                continue  # its own request is probably crediting it right now
            try:
                if await credit_grab(rain.id, index, member, grabbed_at):
                    credited += 1
            except PrizeRefused as exc:
                log.warning("red packet %s:%s refused to member %s: %s", rain.id, index, member, exc.code)
            except Exception:
                log.exception("crediting stranded red packet %s:%s failed", rain.id, index)
        if not entries and rain.status == RainStatus.ENDED and at - rain.ends_at > STRANDED_AFTER:
            await RedPacketRain.filter(id=rain.id, settled_at__isnull=True).update(settled_at=at)
    return credited


# --- numbers ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RainNumbers:
    grabbed_count: int
    grabbed_amount: int
    left_count: int
    left_amount: int


async def rain_numbers(rain_ids: Sequence[int]) -> dict[int, RainNumbers]:
    """Credited packets and what is left, per rain (a grab still being credited counts as left)."""
    totals: dict[int, dict[str, int]] = {
        i: {"grabbed_count": 0, "grabbed_amount": 0, "all_count": 0, "all_amount": 0} for i in rain_ids
    }
    rows = (
        await RedPacket.filter(rain_id__in=list(rain_ids))
        .annotate(n=Count("id"), s=Sum("amount"))
        .group_by("rain_id")
        .values("rain_id", "n", "s")
    )
    for row in rows:
        totals[row["rain_id"]].update(all_count=row["n"], all_amount=int(row["s"] or 0))
    rows = (
        await RedPacket.filter(rain_id__in=list(rain_ids), member_id__isnull=False)
        .annotate(n=Count("id"), s=Sum("amount"))
        .group_by("rain_id")
        .values("rain_id", "n", "s")
    )
    for row in rows:
        totals[row["rain_id"]].update(grabbed_count=row["n"], grabbed_amount=int(row["s"] or 0))
    return {
        i: RainNumbers(
            t["grabbed_count"],
            t["grabbed_amount"],
            t["all_count"] - t["grabbed_count"],
            t["all_amount"] - t["grabbed_amount"],
        )
        for i, t in totals.items()
    }


async def member_packet(rain_id: int, member_id: int) -> RedPacket | None:
    """The packet a member holds in a rain, once credited."""
    return await RedPacket.get_or_none(rain_id=rain_id, member_id=member_id)


# --- room events -------------------------------------------------------------------------------------------


async def _announce_start(rain: RedPacketRain) -> None:
    await _publish(
        rain.room_id,
        events.RedPacketRainStarted(
            rain_id=rain.id, packet_count=rain.packet_count, starts_at=rain.starts_at, ends_at=rain.ends_at
        ),
    )


async def _announce_end(rain: RedPacketRain) -> None:
    grabbed = await RedPacket.filter(rain_id=rain.id, member_id__isnull=False).count()
    await _publish(
        rain.room_id,
        events.RedPacketRainEnded(rain_id=rain.id, packet_count=rain.packet_count, packets_grabbed=grabbed),
    )


async def _publish(room_id: int, event: events.RoomEvent) -> None:
    # After the commit that made the change; a lost event is logged, never the change's failure.
    try:
        await events.publish_room_event(room_id, event)
    except Exception:
        log.exception("room %s: %s not published", room_id, event.KIND)


async def sweep_rains(at: datetime) -> int:
    """The rains' time-driven work, on every process's sweeper: start, end, credit what was left behind."""
    return await start_due_rains(at) + await end_due_rains(at) + await credit_stranded_grabs(at)


register_sweep_job("red-packet-rain", sweep_rains)

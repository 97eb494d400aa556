"""Hot search words: what many shoppers searched lately, counted so that no one shopper can set them.

Each day has a tally in Redis (a sorted set of normalised terms). A search counts once per term per searcher
per day: a member by their id, an anonymous shopper by their network address (an IPv6 /64), so 300 searches
from one address count as one. A searcher adds at most HOT_SEARCH_TERMS_PER_SEARCHER terms a day, so one
address cannot flood the tally with distinct terms either. Each day keeps its HOT_SEARCH_DAY_CAPACITY most
searched terms (trimmed from twice that, so new terms have room to rise). The hot words are the last seven
days added up, older days weighing less, and a term needs HOT_SEARCH_MIN_SEARCHERS of that weight to show.
Checking, counting and trimming are one Lua script: concurrent searches on any process count exactly.

Staff take a term off at once with the blocklist (`block_term`): stored in the database (it survives Redis
losing its keys), mirrored in a Redis set the counting script reads (so a search costs no SQL), and the term's
tallies are removed when it is blocked. Reading the hot words checks the mirror against the database and
restores what a Redis restart lost.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError

from infra.clock import SHOP_TZ, now
from infra.redis import REDIS_ERRORS, get_redis
from infra.settings import get_settings
from models import SearchTermBlock
from services.catalog.search import normalize_text
from services.errors import DomainError, ErrorCode

HOT_KEY_PREFIX = "search:hot:"
HOT_WINDOW_DAYS = 7
# Weight of a day's tally per day of age: today 1, yesterday 0.8, a week ago 0.26.
DAILY_DECAY = 0.8
# One day longer than the window, so the oldest day is still there on the window's last day.
HOT_KEY_TTL = timedelta(days=HOT_WINDOW_DAYS + 1)
MAX_HOT_KEYWORD_LENGTH = 32  # SearchTermBlock.term's column too
log = logging.getLogger("lianmall.hot_words")

MAX_BLOCKED_TERMS = 1000
_BLOCKED_KEY = f"{HOT_KEY_PREFIX}blocked"

# KEYS: the day's tally, the searcher's terms of the day, the blocked mirror.
# ARGV: term, tally TTL, searcher TTL, terms per searcher, day capacity. Returns 1 when the search counted.
_RECORD = """
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZINCRBY', KEYS[1], 1, ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local capacity = tonumber(ARGV[5])
if redis.call('ZCARD', KEYS[1]) > 2 * capacity then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(capacity + 1))
end
return 1
"""


def hot_term(keyword: str) -> str | None:
    """The form a keyword is counted and blocked in (NFKC, lower case, no white space), or None when it is
    blank or longer than MAX_HOT_KEYWORD_LENGTH."""
    term = normalize_text(keyword)
    return term if term and len(term) <= MAX_HOT_KEYWORD_LENGTH else None


def _hot_key(day: date) -> str:
    return f"{HOT_KEY_PREFIX}{day:%Y%m%d}"


def _shop_today() -> date:
    return now().astimezone(SHOP_TZ).date()


def _window() -> list[date]:
    today = _shop_today()
    # One day past the window too: a term blocked is removed from every tally that still exists.
    return [today - timedelta(days=back) for back in range(HOT_WINDOW_DAYS + 1)]


def _seconds_left_today() -> int:
    moment = now().astimezone(SHOP_TZ)
    midnight = datetime.combine(moment.date() + timedelta(days=1), time(), tzinfo=SHOP_TZ)
    return max(1, int((midnight - moment).total_seconds()))


async def record_search(keyword: str, searcher: str | None) -> bool:
    """Count one search for `keyword` by `searcher` (e.g. `m:12`, `ip:198.51.100.7`; None: not counted)
    towards today's hot words, in the shop's time zone. Returns whether it counted."""
    term = hot_term(keyword)
    if term is None or not searcher:
        return False
    settings = get_settings()
    today = _shop_today()
    record = get_redis().register_script(_RECORD)
    try:
        counted = await record(
            keys=[_hot_key(today), f"{HOT_KEY_PREFIX}by:{today:%Y%m%d}:{searcher}", _BLOCKED_KEY],
            args=[
                term,
                int(HOT_KEY_TTL.total_seconds()),
                _seconds_left_today() + 3600,
                settings.hot_search_terms_per_searcher,
                settings.hot_search_day_capacity,
            ],
        )
    except REDIS_ERRORS:
        return False  # a search while Redis is away is answered, just not counted
    return bool(counted)


async def hot_search_words(limit: int = 10) -> list[str]:
    """The most searched terms of the last seven days (today included, older days weighing less), most
    searched first; blocked terms and terms with too few searchers never appear."""
    if limit <= 0:
        return []
    blocked = await _blocked_terms()
    keys = [_hot_key(day) for day in _window()[:HOT_WINDOW_DAYS]]
    weights = [DAILY_DECAY**age for age in range(HOT_WINDOW_DAYS)]
    # A key of its own per call, so concurrent readers cannot see each other's half-built union.
    union_key = f"{HOT_KEY_PREFIX}union:{uuid.uuid4().hex}"
    try:
        async with get_redis().pipeline(transaction=True) as pipe:
            pipe.zunionstore(union_key, dict(zip(keys, weights, strict=True)), aggregate="SUM")
            pipe.zrevrangebyscore(
                union_key, "+inf", get_settings().hot_search_min_searchers, start=0, num=limit + len(blocked)
            )
            pipe.delete(union_key)
            _, words, _ = await pipe.execute()
    except REDIS_ERRORS:
        return []  # the search page still works while Redis is away, without suggestions
    terms = [w.decode() if isinstance(w, bytes) else str(w) for w in words]
    return [term for term in terms if term not in blocked][:limit]


# --- The blocklist ---------------------------------------------------------------------------------------


def _checked_term(term: str) -> str:
    checked = hot_term(term)
    if checked is None:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT,
            f"A search term is 1 to {MAX_HOT_KEYWORD_LENGTH} characters (spaces aside)",
            "term",
        )
    return checked


async def block_term(term: str, staff_id: int | None) -> SearchTermBlock:
    """Take `term` (normalised) off the hot words at once and stop counting it; blocking it again is a no-op.

    Raises BAD_USER_INPUT for a blank or over-long term, LIMIT_EXCEEDED past MAX_BLOCKED_TERMS.
    """
    checked = _checked_term(term)
    block = await SearchTermBlock.get_or_none(term=checked)
    if block is None:
        if await SearchTermBlock.all().count() >= MAX_BLOCKED_TERMS:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED, f"The blocklist holds at most {MAX_BLOCKED_TERMS} terms", "term"
            )
        try:
            block = await SearchTermBlock.create(term=checked, staff_id=staff_id)
        except IntegrityError:  # blocked by someone else meanwhile
            block = await SearchTermBlock.get(term=checked)
    try:
        await _mirror_blocked([checked])
    except REDIS_ERRORS as exc:
        # Blocked in the database, which hot words filter by; the mirror is repaired on the next read.
        log.warning("blocked term not mirrored to Redis yet: %s", exc)
    return block


async def unblock_term(term: str) -> bool:
    """Let `term` count and show again (its past tallies are gone); False when it was not blocked."""
    checked = _checked_term(term)
    removed = await SearchTermBlock.filter(term=checked).delete()
    try:
        await get_redis().srem(_BLOCKED_KEY, checked)
    except REDIS_ERRORS as exc:
        log.warning("unblocked term still in the Redis mirror until the next read: %s", exc)
    return bool(removed)


async def blocked_page(offset: int, limit: int) -> tuple[list[SearchTermBlock], int]:
    """A page of the blocklist, newest first, and its size."""
    rows = await SearchTermBlock.all().order_by("-id").offset(offset).limit(limit)
    return list(rows), await SearchTermBlock.all().count()


async def _blocked_terms() -> set[str]:
    """The blocklist from the database. The Redis mirror follows it: terms it lost (a flush, a restart) are put
    back, terms unblocked while Redis was away are taken out."""
    terms = set(await SearchTermBlock.all().values_list("term", flat=True))
    try:
        mirrored = {
            m.decode() if isinstance(m, bytes) else str(m) for m in await get_redis().smembers(_BLOCKED_KEY)
        }
        lost = sorted(terms - mirrored)
        if lost:
            await _mirror_blocked(lost)
        extra = sorted(mirrored - terms)
        if extra:
            await get_redis().srem(_BLOCKED_KEY, *extra)
    except REDIS_ERRORS:
        pass  # the hot words themselves are unavailable too; the database's list is what filters them
    return terms


async def _mirror_blocked(terms: list[str]) -> None:
    redis: Any = get_redis()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(_BLOCKED_KEY, *terms)
        for day in _window():
            pipe.zrem(_hot_key(day), *terms)
        await pipe.execute()

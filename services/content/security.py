"""Content security: what WeChat's verdict means for each kind of thing a member writes or uploads.

Text goes through msg_sec_check version 2 (infra.wechat) with the writer's openid and the scene of the kind;
images through media_check_async, whose verdict comes back later (services.content.media_checks).

| kind         | risky              | review                 | pass  |
|--------------|--------------------|------------------------|-------|
| review text  | CONTENT_REJECTED   | held for staff (HELD)  | shown |
| article text | CONTENT_REJECTED   | held for staff (HELD)  | shown |
| live comment | CONTENT_REJECTED   | held for staff (HELD)  | shown |
| image        | never shown        | held for staff (HELD)  | shown |

A held live comment waits for the room's staff (services.live.comments). Nicknames are shown now or never:
a review verdict refuses them too, and members apply that themselves (services.members.profile.check_nickname) because members may not import content.
Every check fails closed: when WeChat cannot answer, nothing is written (WECHAT_UNAVAILABLE), and an image
stays hidden until its verdict arrives. Staff writing is not checked: staff are not the public.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from infra import wechat
from infra.wechat import Scene, Suggest, Verdict
from models import Moderation
from services.errors import DomainError, ErrorCode

log = logging.getLogger("lianmall.content")


class ContentKind(StrEnum):
    REVIEW = "REVIEW"
    ARTICLE = "ARTICLE"
    LIVE_COMMENT = "LIVE_COMMENT"


@dataclass(frozen=True)
class Policy:
    scene: Scene
    # Whether a "review" verdict waits for staff (HELD) instead of being refused.
    holds_for_review: bool


POLICIES: dict[ContentKind, Policy] = {
    ContentKind.REVIEW: Policy(Scene.COMMENT, holds_for_review=True),
    ContentKind.ARTICLE: Policy(Scene.FORUM, holds_for_review=True),
    ContentKind.LIVE_COMMENT: Policy(Scene.COMMENT, holds_for_review=True),
}

_SEVERITY = {Suggest.PASS: 0, Suggest.REVIEW: 1, Suggest.RISKY: 2}


def _parts(text: str) -> list[str]:
    size = wechat.TEXT_CHECK_MAX
    return [text[i : i + size] for i in range(0, len(text), size)]


async def check_text(kind: ContentKind, openid: str, text: str, field: str | None = None) -> Moderation:
    """Check member-written `text` of `kind`: PASSED (show it) or HELD (keep it for staff).

    Text longer than WeChat takes per call is checked in parts; the worst verdict counts. Empty text passes
    without a call. Raises DomainError CONTENT_REJECTED (with `field`) when the policy refuses it,
    WECHAT_UNAVAILABLE or WECHAT_RATE_LIMITED when the check cannot run.
    """
    if not text.strip():
        return Moderation.PASSED
    policy = POLICIES[kind]
    worst: Verdict | None = None
    for part in _parts(text):
        verdict = await wechat.msg_sec_check(openid, policy.scene, part, field=field)
        if worst is None or _SEVERITY[verdict.suggest] > _SEVERITY[worst.suggest]:
            worst = verdict
        if worst.suggest is Suggest.RISKY:
            break
    assert worst is not None
    moderation = text_moderation(kind, worst.suggest)
    if moderation is Moderation.REJECTED:
        log.info("%s text refused: %s, label %s", kind, worst.suggest, worst.label)
        raise DomainError(ErrorCode.CONTENT_REJECTED, "WeChat's content check did not allow this text", field)
    return moderation


def text_moderation(kind: ContentKind, suggest: Suggest) -> Moderation:
    """What a text verdict means for `kind` (the table above)."""
    if suggest is Suggest.PASS:
        return Moderation.PASSED
    if suggest is Suggest.REVIEW and POLICIES[kind].holds_for_review:
        return Moderation.HELD
    return Moderation.REJECTED


def media_moderation(suggest: Suggest) -> Moderation:
    """What an image verdict means: shown, held for staff, or never shown."""
    return {Suggest.PASS: Moderation.PASSED, Suggest.REVIEW: Moderation.HELD}.get(
        suggest, Moderation.REJECTED
    )

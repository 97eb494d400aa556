"""Loaders of the marketing domain: a group buy rule's live numbers, a group's members (one query per batch)."""

from __future__ import annotations

from aiodataloader import DataLoader

from services.marketing.group_buy import groups, rules
from services.marketing.presale import setup


class GroupBuyStatsLoader(DataLoader[int, rules.RuleStats]):
    async def batch_load_fn(self, rule_ids: list[int]) -> list[rules.RuleStats]:
        found = await rules.stats_of(rule_ids)
        return [found.get(rid, rules.RuleStats()) for rid in rule_ids]


class GroupBuyMembersLoader(DataLoader[int, list[groups.GroupMember]]):
    async def batch_load_fn(self, group_ids: list[int]) -> list[list[groups.GroupMember]]:
        found = await groups.members_of(group_ids)
        return [found.get(gid, []) for gid in group_ids]


class PresaleStatsLoader(DataLoader[int, setup.PresaleStats]):
    async def batch_load_fn(self, presale_ids: list[int]) -> list[setup.PresaleStats]:
        found = await setup.stats_of(presale_ids)
        return [found.get(pid, setup.PresaleStats()) for pid in presale_ids]

"""Access: staff accounts and their tokens, roles and permissions, partner API keys and scopes, the audit log.

The lowest layer with catalog and members: imports only `services.errors`, `services.rate_limit`, `infra`
and `models`, never another domain (permission checks take any caller shaped like a viewer).
"""

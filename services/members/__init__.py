"""Members: WeChat login and member tokens, phone binding, profile, addresses and regions, and the viewer
(who is asking, resolved once per request from a bearer token).

The lowest layer with access and catalog: may import `services.access` (staff and partner identities behind a
viewer) and `services.catalog` (the price context a viewer carries), never loyalty or anything above. What a
viewer's level changes about prices is plugged in by loyalty (`viewer.set_member_pricing`).
"""

"""Live sale: rooms, pinned products and live prices, comments, red-packet rain, auctions, room events.

May import every domain up to marketing; nothing below imports it.
"""

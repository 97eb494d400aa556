"""Content: reviews with photos, articles, uploads, favourites and browsing history, content security policy.

May import every domain up to marketing; nothing below imports it.
"""

"""Catalog: products, SKUs and specs, categories, brands and tags (staff writes), listings and search, hot search
words and their blocklist (`hot_words`), the price a viewer sees for a SKU (`prices`), and what a committed
catalog write announces (`events`).

The lowest layer with access and members: imports only `services.errors`, `services.rate_limit`, `infra`
and `models`, never another domain.
"""

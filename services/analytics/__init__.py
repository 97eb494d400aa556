"""Analytics: dashboards and reports (GMV, orders, funnel, top products, PV/UV), computed off the request path.

The top layer: may import every other domain; none imports it.
"""

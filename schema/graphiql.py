"""The GraphiQL page served on `GET /graphql` to browsers, with every asset from our own /static."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

from infra.static_assets import vendor_asset

TEMPLATE = Path(__file__).with_name("graphiql.html")


@cache
def graphiql_page() -> str:
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        react=vendor_asset("react").script_tag(),
        react_dom=vendor_asset("react-dom").script_tag(),
        graphiql=vendor_asset("graphiql").script_tag(),
        graphiql_css=vendor_asset("graphiql-css").stylesheet_tag(),
        explorer=vendor_asset("graphiql-explorer").script_tag(),
        explorer_css=vendor_asset("graphiql-explorer-css").stylesheet_tag(),
    )

"""CPU a hostile document costs before it is refused: `python bench/hostile_queries.py` (no server, no database).

Each document goes through `schema.execute` as an anonymous request would, in process. "first" is the CPU
time of a document never seen before (the memo caches are cleared each round), "repeat" that of the same
document again (served from the memo). Both are medians of `--rounds` rounds. For contrast, "naive" runs
strawberry's QueryDepthLimiter (which the server used before) on smaller doubling bombs: it expands
fragments without memoising, so each level doubles its time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="lianmall-bench-"))

from graphql import parse, validate
from strawberry.extensions import QueryDepthLimiter

from schema import query_guard
from schema.context import make_context
from schema.root import schema


def doubling(levels: int, leaf: str = "__typename") -> str:
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return f"query {{ ...F0 }} {chain} fragment F{levels} on Query {{ {leaf} }}"


def chain(length: int) -> str:
    links = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(length))
    return f"query {{ ...F0 }} {links} fragment F{length} on Query {{ __typename }}"


DOCUMENTS = {
    "2^40 doubling fragments": doubling(40),
    "300-fragment chain": chain(300),
    "100k aliases (1.5 MB)": "{ " + " ".join(f"a{i}: __typename" for i in range(100_000)) + " }",
    "200 copies of one field": "{" + " products(first: 1) { totalCount }" * 200 + " }",
    "15 x products(first: 100), nested": "{ "
    + " ".join(
        f"p{i}: products(first: 100) {{ edges {{ node {{ id title skus {{ id price specValues {{ name value }} }} "
        "media { url } tags { name } } } }"
        for i in range(15)
    )
    + " }",
}


def clear_memos() -> None:
    for memo in (
        query_guard._parse,
        query_guard._shape,
        query_guard.validate_query,
        query_guard._size_variables,
        query_guard._cost,
    ):
        memo.cache_clear()


async def cpu_ms(document: str, fresh: bool) -> tuple[float, str]:
    if fresh:
        clear_memos()
    start = time.process_time()
    result = await schema.execute(document, context_value=make_context())
    elapsed = (time.process_time() - start) * 1000
    assert result.errors, "a hostile document must be refused"
    return elapsed, str((result.errors[0].extensions or {}).get("code"))


def naive_ms(levels: int) -> float:
    document = parse(doubling(levels))
    rules = QueryDepthLimiter(max_depth=10).validation_rules
    start = time.process_time()
    validate(schema._schema, document, rules)
    return (time.process_time() - start) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # one line per refusal is the point in production, noise here
    print(f"{'document':38} {'size':>10} {'code':>18} {'first ms':>9} {'repeat ms':>9}")
    for name, document in DOCUMENTS.items():
        first = [await cpu_ms(document, fresh=True) for _ in range(args.rounds)]
        repeat = [await cpu_ms(document, fresh=False) for _ in range(args.rounds)]
        print(
            f"{name:38} {len(document):>10,} {first[0][1]:>18} "
            f"{statistics.median(t for t, _ in first):>9.2f} {statistics.median(t for t, _ in repeat):>9.2f}"
        )
    print("\nnaive (strawberry's QueryDepthLimiter, before):")
    for levels in (12, 14, 16):
        print(f"  2^{levels} doubling fragments: {naive_ms(levels):.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())

"""The catalog read path executed without graphql-core's per-field machinery.

graphql-core spends ~4 us per resolved field (strawberry's wrapper, an Info object, a path, the completion
of the value), and async fields add a task each: most of a cold listing's time. For an operation that reads
only catalog types this package knows (`fields.py`), the validated document is compiled once into a plan
(`plan.py`), and the plan is executed breadth-first over the loaders' plain rows (`execute.py`): one batched
load per field per level, plain attribute reads for scalars, a dict per object in the order graphql-core
would build it. `extension.py` hooks it in after parsing, validation, cost and throttling, so everything
around execution (errors, `extensions.cost`, the response cache and its stock holes) is unchanged.

Anything else (another field, an argument or directive it does not model, any error) falls back to
strawberry's execution of the same request, which then answers exactly as it always did.
"""

"""Walking a keyed bijection off the source's identifiers, without losing injectivity.

A bijective strategy ``E`` (``phone``, ``iban``, ``tokenize``) is a permutation of its
domain ``D`` (each shape of value is its own domain). Let ``S`` be the values of ``D``
that are identifiers of the same kind in the source. When ``E(x)`` lands in ``S``, the
output must be another value, and it must stay distinct from every other output.

Plain cycle walking (``E(E(x))`` ... until outside ``S``) would break injectivity: when
``E(x1) = x2`` and both are source values, both walks end at the same value. Instead
:func:`walk_off` *matches* along the cycle of ``E``: read the cycle from ``x`` onwards as
parentheses, ``(`` for a value in ``S`` and ``)`` for a value outside it, and map ``x`` to
the ``)`` that closes its ``(``: start at depth 1, add 1 for every value of ``S`` met,
subtract 1 for every other value, stop when the depth is 0. So:

* ``F(x) = E(x)`` whenever ``E(x)`` is not in ``S`` (outputs change only where a collision
  forces it);
* ``F(x)`` is never in ``S``;
* ``F`` is injective on ``S`` (two opening parentheses never share their closing one) and,
  since every masked input is itself a source value (``x`` in ``S``), on every input set;
* ``F`` depends on the key, the value and ``S`` only: not on the batch or the row order.

A walk ends within one turn of its cycle when the cycle holds more values outside ``S``
than in it (true of the permutations of all but nearly full domains). A walk still
unfinished after ``max_steps`` keeps ``E(x)``: it is in ``S``, so it cannot clash with a
walked output (never in ``S``), nor with another kept one (``E`` is injective); the
caller reports it. A value outside ``S`` (a phone number found inside free text that no
identifier column holds) walks the same way and never ends in ``S``, but its output may
equal a matched one.

Example:
    >>> perm = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: 0}          # one cycle 0 -> 1 -> ... -> 5 -> 0
    >>> step = lambda v: np.array([perm[x] for x in v], dtype=object)
    >>> taken = lambda v: np.isin(v.astype(int), [0, 1, 2])  # S = {0, 1, 2}
    >>> first = step(np.array([0, 1, 2], dtype=object))
    >>> out, walked, stuck = walk_off(first, step, taken)
    >>> out.tolist(), walked, int(stuck.sum())               # plain walking would give [3, 3, 3]
    ([5, 4, 3], 2, 0)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MAX_WALK = 64


def walk_off(first: np.ndarray, step: Callable[[np.ndarray], np.ndarray], taken: Callable[[np.ndarray], np.ndarray],
             max_steps: int = MAX_WALK) -> tuple[np.ndarray, int, np.ndarray]:
    """(outputs, how many were walked, which walks did not finish) for ``first = E(inputs)``.

    ``step`` applies ``E`` to an array of values, ``taken`` tells which values are in ``S``.
    Only the colliding values are walked, all of them together one step at a time.
    """
    out = np.array(first, dtype=object)
    hit = np.asarray(taken(out), dtype=bool)
    stuck = np.zeros(len(out), dtype=bool)
    rows = np.flatnonzero(hit)
    if not len(rows):
        return out, 0, stuck
    current = out[rows]
    depth = np.full(len(rows), 2, dtype=np.int64)  # x itself and E(x), both in S
    for _ in range(max_steps):
        current = np.asarray(step(current), dtype=object)
        depth += np.where(np.asarray(taken(current), dtype=bool), 1, -1)
        done = depth == 0
        if done.any():
            out[rows[done]] = current[done]
            rows, current, depth = rows[~done], current[~done], depth[~done]
        if not len(rows):
            break
    stuck[rows] = True
    return out, int(hit.sum()), stuck

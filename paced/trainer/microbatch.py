"""Micro-batches: a step's problems on one process, cut into forward/backward passes that fit.

Each process takes its share of the step's batch (``batch[rank::N]``), drops the zero-weight
problems (they are never forwarded), sorts the rest by length and cuts them into micro-batches of at
most ``micro_batch_size`` problems and ``micro_batch_tokens`` padded tokens (rows × (longest prompt
+ longest response), the size of the collated input). Sorting first keeps rows of similar length
together, so little of the budget goes to padding. The loss of each micro-batch is its share of the
whole batch's weighted loss (see :func:`paced.trainer.step.batch_loss`), so the sum over micro-batches
and processes is the single-batch loss whatever the split.
"""

from __future__ import annotations

from collections.abc import Sequence


def cap_response(response: Sequence[int], prompt_len: int, max_seq_len: int | None, what: str) -> list[int]:
    """``response`` cut so that ``prompt_len`` + its length ≤ ``max_seq_len`` (None: unchanged).

    Raises ``ValueError`` naming ``what`` when the prompt alone leaves no response token.
    """
    if max_seq_len is None:
        return list(response)
    room = max_seq_len - prompt_len
    if room < 1:
        raise ValueError(f"{what}: its prompt has {prompt_len} tokens, which leaves no response token under "
                         f"DistillConfig.max_seq_len={max_seq_len}; raise max_seq_len above {prompt_len}")
    return list(response[:room])


def padded_tokens(lengths: Sequence[tuple[int, int]]) -> int:
    """Tokens of the collated input of rows with (prompt, response) lengths: rows × (max P + max R)."""
    if not lengths:
        return 0
    return len(lengths) * (max(p for p, _ in lengths) + max(r for _, r in lengths))


def plan_micro_batches(lengths: Sequence[tuple[int, int]], max_rows: int | None = None,
                       max_tokens: int | None = None) -> list[list[int]]:
    """Indices into ``lengths`` grouped into micro-batches, longest rows first.

    ``lengths``: (prompt, response) token counts per row. Greedy: rows sorted by total length
    (descending, ties by index) fill a micro-batch while it keeps ≤ ``max_rows`` rows and
    :func:`padded_tokens` ≤ ``max_tokens``; a single row over the budget gets a micro-batch of its own.
    Every index appears exactly once; the result depends only on the arguments.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-(lengths[i][0] + lengths[i][1]), i))
    groups: list[list[int]] = []
    for i in order:
        cur = groups[-1] if groups else None
        fits = cur is not None and (max_rows is None or len(cur) < max_rows) and (
            max_tokens is None or padded_tokens([lengths[j] for j in (*cur, i)]) <= max_tokens)
        if fits:
            cur.append(i)
        else:
            groups.append([i])
    return groups

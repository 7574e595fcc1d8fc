"""Pure access-pattern arithmetic shared by views (no tensors, no memory).

    >>> reshape_strides(((512, 128), (1, 512)), (128, 2, 256))
    [512, 256, 1]
"""
from __future__ import annotations


def reshape_strides(pattern, new_shape):
    """Strides for ``new_shape`` over the same elements, or None when a copy would be needed."""
    old = [(s, c) for s, c in pattern if c != 1]
    new_strides = [0] * len(new_shape)
    oi, ni = 0, 0
    new_nz = [i for i, d in enumerate(new_shape) if d != 1]
    # walk groups of old dims and new dims with equal products
    while oi < len(old) or ni < len(new_nz):
        if oi >= len(old) or ni >= len(new_nz):
            return None
        op, np_ = old[oi][1], new_shape[new_nz[ni]]
        og, ng = [oi], [new_nz[ni]]
        while op != np_:
            if op < np_:
                oi += 1
                if oi >= len(old):
                    return None
                op *= old[oi][1]
                og.append(oi)
            else:
                ni += 1
                if ni >= len(new_nz):
                    return None
                np_ *= new_shape[new_nz[ni]]
                ng.append(new_nz[ni])
        for a, b in zip(og, og[1:]):           # old group must be contiguous among itself
            if old[a][0] != old[b][0] * old[b][1]:
                return None
        stride = old[og[-1]][0]
        for j in reversed(ng):
            new_strides[j] = stride
            stride *= new_shape[j]
        oi += 1
        ni += 1
    for i, d in enumerate(new_shape):
        if d == 1:
            new_strides[i] = new_strides[i + 1] * new_shape[i + 1] if i + 1 < len(new_shape) and new_strides[i + 1] else 1
    return new_strides

"""Stand-in for einops on machines without it (Debian has no package): MONAI 1.3.2's Swin code calls
einops.rearrange only to permute axes ("b c d h w -> b d h w c"), which is all this supports."""


def rearrange(tensor, pattern):
    source, target = (side.split() for side in pattern.split("->"))
    if len(set(source)) != len(source) or sorted(source) != sorted(target):
        raise NotImplementedError(f"einops stand-in: only axis permutations are supported, not {pattern!r}")
    return tensor.permute(*[source.index(axis) for axis in target])

"""Optional analysis, not used by any test: how far float32 gradients of the SwinUNETR DiceCE step are from float64.

Recomputes the step of ../shared/reference/segmentation/tiny12_r64_b2_c4 with MONAI 1.3.2's own SwinUNETR and
DiceCELoss in float64 and in float32, and ranks per parameter the relative L2 error (full tensor and first 64
values, as the fixture's grad_head) of PyTorch float32 vs float64 and, given our gradients (`grad.<key>`, written by
`npx voco grad --weights <fixture>/weights.safetensors --batch <fixture>/inputs.safetensors --out ours.safetensors`),
of ours vs float64. The numbers argue the
deep-gradient bounds of test/models/swinunetr-reference.test.ts.

Usage (torch, numpy and MONAI 1.3.2's sources, e.g. `git archive 1.3.2 monai` of the MONAI repository; MONAI's Swin
code uses einops only for `rearrange` as an axis permutation, so a one-function stand-in package will do):
  PYTHONPATH=/tmp/monai-1.3.2:/tmp/stubs /usr/bin/python3 scripts/swinunetr_float64_check.py \
      --fixture ../shared/reference/segmentation/tiny12_r64_b2_c4 [--ours ours.safetensors] [--save f64.npz]
"""
import argparse
import json
import struct

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    """The safetensors format by hand: u64 little-endian header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(blob[base + start : base + end], dtype=dtype).reshape(info["shape"]).copy()
    return out


def step(weights, inputs, dtype):
    from monai.losses import DiceCELoss
    from monai.networks.nets import SwinUNETR

    torch.manual_seed(0)
    model = SwinUNETR(img_size=64, in_channels=1, out_channels=4, feature_size=12, use_v2=True)
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    model.load_state_dict(state, strict=True)
    model = model.to(dtype)
    model.train()
    loss_fn = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True)
    image = torch.from_numpy(inputs["image"]).to(dtype)
    label = torch.from_numpy(inputs["label"]).to(dtype)
    logits = model(image)
    loss = loss_fn(logits, label)
    model.zero_grad()
    loss.backward()
    grads = {k: p.grad.detach().to(torch.float64).numpy().copy() for k, p in model.named_parameters()}
    return float(loss), logits.detach().to(torch.float64).numpy(), grads


def rel(a, b, scale):
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    nb = np.linalg.norm(b)
    return np.linalg.norm(a - b) / (nb if nb > 0 else scale)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--ours")
    ap.add_argument("--save")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    weights = read_safetensors(f"{args.fixture}/weights.safetensors")
    inputs = read_safetensors(f"{args.fixture}/inputs.safetensors")
    expected = read_safetensors(f"{args.fixture}/expected.safetensors")
    loss64, logits64, g64 = step(weights, inputs, torch.float64)
    loss32, logits32, g32 = step(weights, inputs, torch.float32)
    print(f"loss f64 {loss64:.9f}  f32 {loss32:.9f}  fixture {float(expected['loss'][0]):.9f}")
    print(f"logits head: f32 vs fixture max abs {np.abs(logits32.ravel()[:4096] - expected['logits.head']).max():.3e}, "
          f"f32 vs f64 rel L2 {rel(logits32, logits64, 1):.3e}")
    ours = read_safetensors(args.ours) if args.ours else None
    rows = []
    for k in g64:
        full = np.linalg.norm(g64[k])
        head64 = g64[k].ravel()[:64]
        r = {
            "key": k,
            "t32_fixture_head": rel(g32[k].ravel()[:64], expected[f"grad_head.{k}"], full),
            "t32_full": rel(g32[k], g64[k], full),
            "t32_head": rel(g32[k].ravel()[:64], head64, full),
            "fix_head": rel(expected[f"grad_head.{k}"], head64, full),
        }
        if ours is not None:
            o = ours[f"grad.{k}"]
            r["ours_full"] = rel(o, g64[k], full)
            r["ours_head"] = rel(o.ravel()[:64], head64, full)
        rows.append(r)
    cols = [c for c in rows[0] if c != "key"]
    print(f"{'key':58s} " + " ".join(f"{c:>16s}" for c in cols))
    for r in rows:
        print(f"{r['key']:58s} " + " ".join(f"{r[c]:16.3e}" for c in cols))
    for c in cols:
        worst = sorted(rows, key=lambda r: -r[c])[:5]
        print(f"worst {c}: " + ", ".join(f"{r['key']} {r[c]:.2e}" for r in worst))
    if ours is not None:
        ratio = sorted(rows, key=lambda r: -(r["ours_head"] / max(r["t32_head"], 1e-12)))[:8]
        print("largest ours_head / t32_head: " + ", ".join(
            f"{r['key']} {r['ours_head']:.2e}/{r['t32_head']:.2e}" for r in ratio))
    if args.save:
        np.savez(args.save, **{f"grad64.{k}": v for k, v in g64.items()}, **{f"grad32.{k}": v for k, v in g32.items()})


if __name__ == "__main__":
    main()

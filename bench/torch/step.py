"""One whole training step in PyTorch, timed: forward, backward and AdamW, as upstream runs it on the CPU.

  voco:      Large-Scale-Medical's VoCoHead (Self-supervised/models/voco_head.py) on MONAI's SwinTransformer(use_v2=True):
             EMA update of the teacher head, backbone on 1 + 9 crops, Dropout1d(0.2) before the student head, the
             intra/inter-volume and base-regularisation losses; AdamW(amsgrad, weight decay 1e-2).
  swinunetr: MONAI's SwinUNETR(use_v2=True) + DiceCELoss(include_background=False, to_onehot_y=True, softmax=True)
             on 4 crops; AdamW(lr 3e-4, weight decay 1e-5), the fine-tuning recipe of Downstream/monai/BTCV.

Needs MONAI 1.3.2 on PYTHONPATH (and einops, or the stand-in beside this file). Prints one JSON line.
Run: python3 step.py voco|swinunetr [--feature-size 12] [--roi 64] [--steps 2] [--threads 2]
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def projection_head(in_dim, hidden=1024, out=1024):
    def block(i, o):
        return [nn.Linear(i, o), nn.BatchNorm1d(o, affine=False, track_running_stats=False), nn.ReLU(inplace=True)]

    return nn.Sequential(*block(in_dim, hidden), *block(hidden, hidden), nn.Linear(hidden, out))


class VocoModel(nn.Module):
    """The backbone (SwinViT + five UnetrBasicBlocks, pooled and concatenated) and the student/teacher heads."""

    def __init__(self, fs):
        super().__init__()
        from monai.networks.blocks import UnetrBasicBlock
        from monai.networks.nets.swin_unetr import SwinTransformer

        self.swin = SwinTransformer(in_chans=1, embed_dim=fs, window_size=(7, 7, 7), patch_size=(2, 2, 2),
                                    depths=[2, 2, 2, 2], num_heads=[3, 6, 12, 24], mlp_ratio=4.0, qkv_bias=True,
                                    norm_layer=nn.LayerNorm, spatial_dims=3, use_v2=True)
        widths = [(1, fs), (fs, fs), (2 * fs, 2 * fs), (4 * fs, 4 * fs), (16 * fs, 16 * fs)]
        self.encoders = nn.ModuleList(UnetrBasicBlock(spatial_dims=3, in_channels=i, out_channels=o, kernel_size=3,
                                                      stride=1, norm_name="instance", res_block=True) for i, o in widths)
        self.student = projection_head(24 * fs)
        self.teacher = projection_head(24 * fs)
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def embed(self, x):
        hidden = self.swin(x, True)
        inputs = [x, hidden[0], hidden[1], hidden[2], hidden[4]]
        return torch.cat([F.adaptive_avg_pool3d(e(h), 1).flatten(1) for e, h in zip(self.encoders, inputs)], dim=1)


def assign(feats, bases):
    return F.relu(F.cosine_similarity(feats[:, None, :], bases[None, :, :], dim=2))


def ce_loss(labels, logits):
    pos = -(labels * torch.log(1 - (labels - logits).abs() + 1e-6)).sum() / (labels.sum() + 1e-6)
    neg_labels = (labels == 0).float()
    neg = -(neg_labels * torch.log(1 - logits + 1e-6)).sum() / (neg_labels.sum() + 1e-6)
    return pos + neg


def base_regularisation(bases):
    pairs = [(i, j) for i in range(len(bases)) for j in range(i + 1, len(bases))]
    return sum(F.relu(F.cosine_similarity(bases[i:i + 1], bases[j:j + 1].detach())) ** 2 for i, j in pairs) / len(pairs)


def voco_step(model, batch):
    images, crops, labels = batch
    with torch.no_grad():
        for s, t in zip(model.student.parameters(), model.teacher.parameters()):
            t.mul_(0.9).add_(s, alpha=0.1)
    embeddings = model.embed(torch.cat([images, crops]))
    student = model.student(nn.Dropout1d(0.2)(embeddings))
    with torch.no_grad():
        teacher = model.teacher(embeddings)
    n = images.shape[0]  # one volume: its random crops, then its 9 base crops
    x_s, b_s, x_t, b_t = student[:n], student[n:], teacher[:n], teacher[n:]
    intra = ce_loss(labels[0], assign(x_s, b_t))
    inter = ce_loss(assign(x_t, b_t).detach(), assign(x_s, b_s))  # batch 1: the "other" volume is this one
    return intra + inter + base_regularisation(b_s)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=["voco", "swinunetr"])
    parser.add_argument("--feature-size", type=int, default=12)
    parser.add_argument("--roi", type=int, default=None)
    parser.add_argument("--crops", type=int, default=4, help="swinunetr: crops per step")
    parser.add_argument("--classes", type=int, default=14, help="swinunetr: output channels")
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.model == "voco":
        roi = a.roi or 64
        model = VocoModel(a.feature_size)
        batch = (torch.rand(1, 1, roi, roi, roi), torch.rand(9, 1, roi, roi, roi), torch.rand(1, 1, 9))
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-2, amsgrad=True)
        loss_of = lambda: voco_step(model, batch)  # noqa: E731
    else:
        from monai.losses import DiceCELoss
        from monai.networks.nets import SwinUNETR

        roi = a.roi or 96
        model = SwinUNETR(img_size=(roi,) * 3, in_channels=1, out_channels=a.classes, feature_size=a.feature_size, use_v2=True)
        image = torch.rand(a.crops, 1, roi, roi, roi)
        label = torch.randint(0, a.classes, (a.crops, 1, roi, roi, roi)).float()
        criterion = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1e-5)
        loss_of = lambda: criterion(model(image), label)  # noqa: E731
    model.train()
    times = []
    for step in range(a.steps + 1):
        started = time.perf_counter()
        loss = loss_of()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step > 0:
            times.append(time.perf_counter() - started)
    times.sort()
    print(json.dumps({
        "model": a.model, "feature_size": a.feature_size, "roi": roi, "threads": a.threads, "torch": torch.__version__,
        "step_s": times[(len(times) - 1) // 2], "steps_s": times, "loss": float(loss),
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
    }))


if __name__ == "__main__":
    main()

"""Batch norm over the global batch of every rank: what a single process with the whole batch computes.

On CUDA this is torch's ``SyncBatchNorm``. torch's refuses CPU tensors, so on CPUs (gloo)
:class:`GlobalBatchNorm2d` does the same with one differentiable all-reduce per layer (sums
and sums of squares), so the gradient is the one of the global batch's loss, as with
``SyncBatchNorm``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; its gradient is the sum over ranks of the incoming gradients."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the batch summed over all ranks (any backend)."""

    def forward(self, x: Tensor) -> Tensor:  # (N, C, H, W) -> (N, C, H, W)
        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        xf = x.float()
        c = xf.shape[1]
        # One all-reduce per layer: sums of (x - K) and (x - K)^2 and the count. The shift K (the
        # running mean, the same on every rank) keeps E[d^2] - E[d]^2 free of cancellation.
        shift = (self.running_mean.detach().clone() if self.track_running_stats
                 else torch.zeros(c, device=x.device)).view(1, -1, 1, 1)
        d = xf - shift
        count = torch.full((1,), xf.numel() // c, dtype=torch.float32, device=x.device)
        total = _AllReduceSum.apply(torch.cat([d.sum((0, 2, 3)), (d * d).sum((0, 2, 3)), count]))
        n = total[-1]
        mean_d = total[:c] / n
        var = (total[c : 2 * c] / n - mean_d * mean_d).clamp_min(0)
        mean = shift.view(-1) + mean_d
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * n / (n - 1), momentum)  # unbiased, as BatchNorm2d keeps it
        y = (xf - mean.view(1, -1, 1, 1)) * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y.to(x.dtype)


def synchronise(module: nn.Module, device: torch.device) -> nn.Module:
    """Every ``BatchNorm2d`` in ``module`` becomes a synchronised one, sharing its parameters and buffers.

    The optimizer's references stay valid (same ``Parameter`` objects) and the state-dict keys
    are unchanged: a checkpoint loads into the plain networks.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, GlobalBatchNorm2d):
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats, device=device)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        else:
            synchronise(child, device)
    return module

"""Batch norm over the global batch of every rank: what a single process with the whole batch computes.

On CUDA this is torch's ``SyncBatchNorm``. torch's refuses CPU tensors, so on CPUs (gloo)
:class:`GlobalBatchNorm2d` does the same with one collective per layer forward (every rank's
statistics) and one backward (the sums the statistics' gradient needs), so the gradient is the
one of the global batch's loss, as with ``SyncBatchNorm``.

:func:`synchronise` converts a network in place, keeping parameters, buffers and state-dict keys:
a checkpoint of the synchronised network loads into the plain one. Plain ``BatchNorm2d`` layers
convert as they are; a ``BatchNorm2d`` subclass that applies child modules after its batch norm
(a fused norm and activation, say) converts when the caller names those children, in the order
the layer applies them (``synchronise(net, device, after={NormAct: ("drop", "act")})``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from augkit.compute import distributed


def _after(module: nn.Module, y: Tensor) -> Tensor:
    """The child modules the converted layer applied after its batch norm, in order."""
    for name in module.after:
        y = module._modules[name](y)
    return y


class _GlobalBatchNorm(torch.autograd.Function):
    """Batch norm of this rank's share with the global batch's statistics; gradients of the global batch's loss.

    Forward: this rank's mean and variance from torch's fused kernel, one all-gather of every
    rank's (mean, variance, count), combined exactly (Chan et al.'s parallel formula, in float64,
    as torch's SyncBatchNorm does: no cancellation however far the mean is from zero), then
    torch's fused eval-mode kernel with the global statistics. Backward: torch's fused eval-mode
    backward gives dy * w * invstd and this rank's sums of dy and dy * x_hat; one all-reduce of
    those sums, and the terms through the statistics are added in float32.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, eps: float):
        c = x.shape[1]
        # this rank's statistics from torch's fused kernel (14x faster than var_mean over (0, 2, 3) of a
        # channels-last tensor on a CPU); its output is discarded
        _, mean_r, invstd_r = torch.ops.aten.native_batch_norm(x, None, None, None, None, True, 0.0, eps)
        var_r = (invstd_r.double() ** -2 - eps).clamp_min(0)
        local = torch.cat([mean_r.double(), var_r, torch.full((1,), float(x.numel() // c), dtype=torch.float64,
                                                                device=x.device)])
        every = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(every, local)
        stats = torch.stack(every)  # (ranks, 2C + 1)
        counts = stats[:, -1:]
        n = counts.sum()
        mean = (stats[:, :c] * counts).sum(0) / n
        var = ((stats[:, c : 2 * c] + (stats[:, :c] - mean) ** 2) * counts).sum(0) / n
        mean, var = mean.float(), var.float()
        y = torch.nn.functional.batch_norm(x, mean, var, weight, bias, training=False, eps=eps)
        ctx.save_for_backward(x, weight, mean, var)
        ctx.eps, ctx.n = eps, float(n)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var, ctx.n

    @staticmethod
    def backward(ctx, grad: Tensor, *_):
        x, weight, mean, var = ctx.saved_tensors
        dx, dw, db = torch.ops.aten.native_batch_norm_backward(
            grad.contiguous(memory_format=_layout(x)), x, weight, mean, var, None, None, False, ctx.eps,
            [True, True, True])
        sums = torch.cat([db.float(), dw.float()])  # this rank's sums of dy and dy * x_hat
        dist.all_reduce(sums)
        c = len(mean)
        invstd = torch.rsqrt(var + ctx.eps)
        k = weight.float() * invstd / ctx.n
        # dx = w invstd (dy - (S_dy + x_hat S_dyxhat) / n) = [w invstd dy] + b x + a, a = -b mean - k S_dy
        b = -k * invstd * sums[c:]
        a = (-b * mean.double() - k * sums[:c]).float().view(1, -1, 1, 1)
        b = b.view(1, -1, 1, 1)
        if dx.dtype == torch.float32:  # two passes, in place
            return dx.addcmul_(x, b).add_(a), dw, db, None
        # bf16 / fp16: b x and a nearly cancel when the mean is far from zero; add them in float32, round once
        return torch.addcmul(a, x.float(), b).add_(dx.float()).to(dx.dtype), dw, db, None


def _layout(x: Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the batch summed over all ranks (any backend)."""

    after: tuple[str, ...] = ()  # child modules applied after the batch norm, in order (see synchronise)

    def forward(self, x: Tensor) -> Tensor:  # (N, C, H, W) -> (N, C, H, W)
        if not self.training or distributed.world().size == 1:
            return _after(self, super().forward(x))
        c = x.shape[1]
        ones = None if self.affine else torch.ones(c, device=x.device)
        y, mean, var, n = _GlobalBatchNorm.apply(x, self.weight if self.affine else ones,
                                                 self.bias if self.affine else torch.zeros_like(ones), self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * n / (n - 1), momentum)  # unbiased, as BatchNorm2d keeps it
        return _after(self, y)


class _SyncBatchNorm(nn.SyncBatchNorm):
    """torch's ``SyncBatchNorm`` (CUDA), followed by the child modules the converted layer applied after it."""

    after: tuple[str, ...] = ()

    def forward(self, x: Tensor) -> Tensor:
        return _after(self, super().forward(x))


def synchronise(module: nn.Module, device: torch.device,
                after: Mapping[type[nn.BatchNorm2d], Sequence[str]] | None = None) -> nn.Module:
    """Every ``BatchNorm2d`` in ``module`` becomes a synchronised one, sharing its parameters and buffers.

    The optimizer's references stay valid (same ``Parameter`` objects) and the state-dict keys
    are unchanged: a checkpoint loads into the plain networks. ``after`` maps a ``BatchNorm2d``
    subclass that applies child modules after its batch norm to their names, in the order it
    applies them: the synchronised layer keeps those children and applies them likewise. A layer
    with children that ``after`` does not name for its class is refused (``TypeError``) rather
    than converted without them.
    """
    cls = _SyncBatchNorm if device.type == "cuda" else GlobalBatchNorm2d
    after = after or {}
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, GlobalBatchNorm2d):
            then = tuple(next((after[k] for k in type(child).__mro__ if k in after), ()))
            children = [n for n, _ in child.named_children()]
            if sorted(then) != sorted(children):
                raise TypeError(
                    f"{name}: a {type(child).__qualname__} with child modules {children}; synchronise(..., after=...) "
                    f"names {list(then)} for it: name every child the layer applies after its batch norm, in order")
            new = cls(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats,
                      device=device)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            for extra in then:
                new.add_module(extra, child._modules[extra])
            new.after = then
            new.train(child.training)
            setattr(module, name, new)
        elif not isinstance(child, nn.SyncBatchNorm):
            synchronise(child, device, after)
    return module

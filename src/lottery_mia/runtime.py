"""How a job runs on its device, decided once: device, AMP, channels_last, CUDA graphs.

Every choice that depends on the device is made here, in :func:`make_runtime`, and handed
to the training and evaluation code as one :class:`Runtime` object, so no function asks
``device.type == "cuda"`` for itself.

- ``amp``: bfloat16 autocast on CUDA, off on the CPU (the CPU path stays float32, bit for
  bit what it always was).
- ``channels_last``: on CUDA (tensor-core convolutions want NHWC), off on the CPU.
- ``cuda_graphs``: the config key ``runtime.cuda_graphs``: ``auto`` (on CUDA yes, on the
  CPU no), ``true`` or ``false``. CUDA graphs need CUDA; ``true`` on the CPU is an error.
- ``jpeg_decode``: where ImageNet's JPEGs are decoded (``runtime.jpeg_decode`` when the
  block has it): ``auto`` (on the GPU with CUDA, else in the loader workers), ``device``
  (batched on the job's device) or ``cpu`` (in the loader workers, libjpeg-turbo); see
  :class:`lottery_mia.data.FolderImageSet`.

The config block (``runtime:`` in config/config.yaml) also carries ``gpu_slots``, which
:mod:`lottery_mia.devices` reads; it is not a property of one job's run and is ignored here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Runtime", "make_runtime", "ForeachSGD", "jpeg_decode_of", "CUDA_GRAPHS_CHOICES",
           "JPEG_DECODE_CHOICES"]

CUDA_GRAPHS_CHOICES = ("auto", True, False)
JPEG_DECODE_CHOICES = ("auto", "device", "cpu")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp: bool = False
    amp_dtype: torch.dtype = torch.bfloat16
    channels_last: bool = False
    cuda_graphs: bool = False
    jpeg_decode: str = "cpu"

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        """The autocast context of a forward pass (a no-op when AMP is off).

        The autocast weight cache is off under CUDA graphs: cached casts made during capture
        would outlive the graph's memory pool.
        """
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp,
                              cache_enabled=False if self.cuda_graphs else None)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def optimizer(self, params, **sgd) -> torch.optim.SGD:
        """SGD whose step is one fused (CUDA) or multi-tensor (CPU) update: no per-parameter
        Python loop and no host synchronisation."""
        if self.is_cuda:
            return torch.optim.SGD(params, fused=True, **sgd)
        return ForeachSGD(params, **sgd)


def _undecorated(method):
    """``method`` without torch's lazy ``torch._disable_dynamo`` wrapper (which imports
    torch._dynamo, about a second, on its first call)."""
    return getattr(method, "__wrapped__", method)


class ForeachSGD(torch.optim.SGD):
    """torch.optim.SGD with ``foreach=True``, the same update bit for bit, that never
    imports torch._dynamo.

    torch's optimizers import torch._dynamo on their first ``add_param_group``,
    ``zero_grad`` and ``state_dict`` (a lazy ``torch._disable_dynamo`` wrapper) and on every
    ``step`` (a graph break around it): about a second of every CPU training job's start-up,
    for a compiler the jobs never use. Here the undecorated methods are called, and ``step``
    runs torch's own multi-tensor SGD (``torch.optim.sgd._multi_tensor_sgd``) under no_grad,
    as SGD.step does for a plain (not differentiable, not fused, dense-gradient) group; any
    other group takes torch's own ``step``. State dicts are torch's: a resume file written
    by either loads in the other.
    """

    def __init__(self, params, **sgd):
        super().__init__(params, foreach=True, **sgd)

    add_param_group = _undecorated(torch.optim.Optimizer.add_param_group)
    zero_grad = _undecorated(torch.optim.Optimizer.zero_grad)
    state_dict = _undecorated(torch.optim.Optimizer.state_dict)
    load_state_dict = _undecorated(torch.optim.Optimizer.load_state_dict)

    def step(self, closure=None):
        from torch.optim.sgd import _multi_tensor_sgd

        if any(g["differentiable"] or g["fused"] or not g["foreach"] or g["maximize"]
               or any(p.grad is not None and p.grad.is_sparse for p in g["params"])
               for g in self.param_groups):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                params, grads, bufs = [], [], []
                self._init_group(group, params, grads, bufs)
                _multi_tensor_sgd(params, grads, bufs, None, None,
                                  weight_decay=group["weight_decay"],
                                  momentum=group["momentum"], lr=group["lr"],
                                  dampening=group["dampening"], nesterov=group["nesterov"],
                                  maximize=False, has_sparse_grad=False)
                if group["momentum"] != 0:
                    for p, buf in zip(params, bufs, strict=True):
                        self.state[p]["momentum_buffer"] = buf
        return loss


def _parse_flag(value, key: str):
    if isinstance(value, str):
        v = value.strip().lower()
        if v == "auto":
            return "auto"
        if v in ("true", "yes", "on", "1"):
            return True
        if v in ("false", "no", "off", "0"):
            return False
    elif value is None:
        return "auto"
    elif isinstance(value, bool):
        return value
    raise ValueError(f"config key {key}: {value!r} is not one of auto, true, false")


def make_runtime(device, config: dict | None = None) -> Runtime:
    """The runtime of a job on ``device`` (a claimed torch device), given the config's
    ``runtime`` block (``None``: the defaults)."""
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    # without a config block (library use): the config's own default, auto
    graphs = _parse_flag(config["cuda_graphs"] if config else None, "runtime.cuda_graphs")
    if graphs is True and not cuda:
        raise ValueError(f"config key runtime.cuda_graphs is true but the job runs on {dev}; "
                         "CUDA graphs need a GPU: set it to auto or false")
    return Runtime(device=dev, amp=cuda, amp_dtype=torch.bfloat16, channels_last=cuda,
                   cuda_graphs=cuda if graphs == "auto" else bool(graphs),
                   jpeg_decode=jpeg_decode_of(dev, config))


def jpeg_decode_of(device, config: dict | None = None) -> str:
    """Where ImageNet's JPEGs are decoded on ``device``: ``device`` or ``cpu``, from the
    runtime block's ``jpeg_decode`` (``auto`` or absent: ``device`` on CUDA)."""
    decode = str((config or {}).get("jpeg_decode") or "auto").strip().lower()
    if decode not in JPEG_DECODE_CHOICES:
        raise ValueError(f"config key runtime.jpeg_decode: {decode!r} is not one of "
                         f"{', '.join(JPEG_DECODE_CHOICES)}")
    if decode == "auto":
        decode = "device" if torch.device(device).type == "cuda" else "cpu"
    return decode

"""A short, prepared check of the CUDA path, for a machine with a GPU (about a minute).

    .venv/bin/python benchmarks/gpu_check.py [--images 10000] [--epochs 2]

It trains a dense ResNet18 (width 64, CIFAR stem) on random CIFAR-shaped data held on the GPU,
prunes it to 80%, rewinds and retrains the ticket, and checks and prints:
- the device claimed (lock file or CUDA_VISIBLE_DEVICES) and that the model ran there;
- bf16 autocast and channels_last in use; pruned weights exactly zero after retraining;
- training throughput (images/s) of the dense run and the ticket, and peak GPU memory.
Exits non-zero when CUDA is missing or a check fails. Not part of the test suite (CI has no GPU).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()

    import numpy as np
    import torch

    from lottery_mia.data import TensorImageSet
    from lottery_mia.devices import claim_device
    from lottery_mia.masks import model_sparsity
    from lottery_mia.pruning import get_method
    from lottery_mia.models import build_model
    from lottery_mia.sources import source_info
    from lottery_mia.recipe import Recipe
    from lottery_mia.training import run_training

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    info = source_info("cifar10")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, args.images)
    recipe = Recipe.from_dict({"epochs": args.epochs, "batch_size": args.batch_size, "lr": 0.1,
                               "width": 64, "eval_every": 0, "num_workers": 0,
                               "augment": {"crop_padding": 4, "hflip": True}})
    with claim_device("cuda") as claim:
        dev = torch.device(claim.device)
        print(f"claimed {claim.device} (lock {claim.lock_path}); "
              f"{torch.cuda.get_device_name(dev)}")
        train = TensorImageSet(x, y, info.mean, info.std, device=dev, channels_last=True)
        test = TensorImageSet(x[:2000], y[:2000], info.mean, info.std, device=dev,
                              channels_last=True)
        assert train.x.device.type == "cuda", "images are not held on the GPU"
        torch.manual_seed(0)
        model = build_model("resnet18", 10, width=64, in_channels=3, small_input=True)
        w0 = {k: v.clone() for k, v in model.state_dict().items()}
        seen = set()  # (output dtype, input is channels_last) of the first convolution
        hook = model.conv1.register_forward_hook(
            lambda m, i, o: seen.add((o.dtype, i[0].is_contiguous(
                memory_format=torch.channels_last))))
        torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.time()
        run_training(model, train, test, recipe, seed=0, device=dev)
        torch.cuda.synchronize(dev)
        dense_s = time.time() - t0
        hook.remove()
        assert (torch.bfloat16, True) in seen, f"expected bf16 autocast on channels_last: {seen}"
        mask = get_method("oneshot").mask_at(model, 0.8)
        ticket = build_model("resnet18", 10, width=64, in_channels=3, small_input=True)
        ticket.load_state_dict(w0)
        mask.apply_(ticket)
        t0 = time.time()
        run_training(ticket, train, test, recipe, seed=0, device=dev, mask=mask)
        torch.cuda.synchronize(dev)
        ticket_s = time.time() - t0
        sp = model_sparsity(ticket.cpu())["sparsity_prunable"]
        assert abs(sp - 0.8) < 1e-4, f"ticket sparsity {sp} after retraining"
        n = args.images * args.epochs
        print(f"dense: {n / dense_s:.0f} images/s; ticket: {n / ticket_s:.0f} images/s; "
              f"peak GPU memory {torch.cuda.max_memory_allocated(dev) / 2**30:.2f} GiB; "
              f"ticket sparsity after retraining {sp:.4f}")
    print("GPU check passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

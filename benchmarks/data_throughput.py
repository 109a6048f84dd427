"""ImageNet data path throughput: the PIL path of old vs the uint8 / GPU-decode path.

    .venv/bin/python benchmarks/data_throughput.py                 # CPU (and GPU if there is one)
    .venv/bin/python benchmarks/data_throughput.py --images 128 --rounds 2   # quicker

It writes synthetic ImageNet-sized JPEGs (default 500 x 375, quality 90, smooth content plus
noise: about 95 kB each, near ImageNet's average) into a temporary ImageFolder and measures
images/s of the training views (RandomResizedCrop 224 + flip + normalisation to the float32
batch a model sees) and of the evaluation views (Resize 256 + CenterCrop 224):

- ``pil``: the path of old, PIL decode + torchvision transforms to normalised float32
  (``ToTensor``, ``Normalize``), exactly what ``FolderImageSet`` did before;
- ``new_cpu``: :class:`lottery_mia.data.FolderImageSet` with ``decode="cpu"``:
  libjpeg-turbo decode (``torchvision.io``), crop and antialiased resize in uint8,
  normalisation of the uint8 batch;
- ``new_gpu`` (with CUDA): ``decode="device"``: the files are decoded in batches on the
  GPU (nvJPEG) and cropped, resized, flipped and normalised there.

Per core: one process, one torch thread, no loader workers, images/s from the process's
CPU time (robust to other load on a shared machine; wall clock beside it). With
``--workers K`` (default: the CPU count) both CPU paths are also timed with K loader
workers, wall clock. The last line printed is one JSON object; ``ratio_new_vs_pil`` is
new_cpu / pil per core for the training views.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_jpegs(root: Path, n: int, width: int, height: int, classes: int = 4,
                seed: int = 0) -> Path:
    """``n`` synthetic photos-like JPEGs in ``root/train/<class>/`` (an ImageFolder)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / "train" / f"n{i % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        low = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(low).resize((width, height), Image.BICUBIC),
                         dtype=np.int16)
        img = img + rng.normal(0, 18, img.shape).astype(np.int16)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            folder / f"img{i:06d}.JPEG", quality=90)
    return root


def _timed(batches, device) -> tuple[float, float, int]:
    """(wall s, process CPU s, images) of consuming ``batches``."""
    import torch

    w0, c0, n = time.perf_counter(), time.process_time(), 0
    for xb, yb in batches:
        n += yb.shape[0]
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - w0, time.process_time() - c0, n


def pil_batches(root: Path, batch: int, workers: int, train: bool, seed: int):
    """The old path: ImageFolder + PIL + torchvision transforms, float32 out."""
    import torch
    from torchvision import datasets
    from torchvision import transforms as T

    from lottery_mia.datasets.imagenet import load_image as _load_image

    if train:
        tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize(MEAN, STD)])
    else:
        tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    folder = datasets.ImageFolder(str(root / "train"), loader=_load_image, transform=tf)
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(folder, batch_size=batch, shuffle=train, generator=gen,
                                       num_workers=workers, drop_last=train)


def new_set(root: Path, n: int, workers: int, decode: str, device: str):
    import numpy as np

    from lottery_mia.data import FolderImageSet

    return FolderImageSet(root, "train", np.arange(n), MEAN, STD, device=device,
                          num_workers=workers, channels_last=False, decode=decode)


def measure(name: str, make, rounds: int, device: str = "cpu", cpu_time: bool = True) -> dict:
    """Best of ``rounds`` passes (a first, untimed pass warms the file cache and starts
    the workers). ``cpu_time``: also images/s of this process's CPU time (meaningful
    without loader workers only: theirs is not counted)."""
    best = None
    key = "cpu_images_per_s" if cpu_time else "wall_images_per_s"
    for r in range(rounds + 1):
        wall, cpu, n = _timed(make(r), device)
        if r == 0:
            continue
        row = {"wall_images_per_s": n / wall}
        if cpu_time:
            row["cpu_images_per_s"] = n / max(cpu, 1e-9)
        if best is None or row[key] > best[key]:
            best = row
    out = {k: round(v, 1) for k, v in best.items()}
    print(f"{name}: {out}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256, help="JPEGs to write and read")
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--height", type=int, default=375)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="timed passes (best is kept)")
    ap.add_argument("--workers", type=int, default=None,
                    help="loader workers of the all-cores runs (default: CPU count; 0: skip)")
    ap.add_argument("--root", default=None, help="use/keep this folder for the JPEGs")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    workers = cores if args.workers is None else args.workers
    tmp = None
    if args.root:
        root = Path(args.root)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="lottery-mia-jpegs-")
        root = Path(tmp.name)
    t0 = time.time()
    if not (root / "train").exists():
        write_jpegs(root, args.images, args.width, args.height)
    files = sorted((root / "train").rglob("*.JPEG"))
    mean_kb = sum(f.stat().st_size for f in files) / len(files) / 1024
    print(f"{len(files)} JPEGs of {args.width}x{args.height}, {mean_kb:.0f} kB on average, "
          f"written in {time.time() - t0:.1f}s to {root}", flush=True)
    n, b = len(files), args.batch
    from lottery_mia.data import Augment

    aug = Augment(hflip=True)
    res: dict = {"images": n, "image_wh": [args.width, args.height], "mean_kb": round(mean_kb, 1),
                 "batch": b, "cpu_count": cores, "torch": torch.__version__,
                 "timing": "per core: process CPU time, one thread, no loader workers"}
    # per core: no workers, one thread
    res["pil_train_per_core"] = measure(
        "pil train (per core)", lambda r: pil_batches(root, b, 0, True, r), args.rounds)
    cpu_set = new_set(root, n, 0, "cpu", "cpu")
    res["new_cpu_train_per_core"] = measure(
        "new cpu train (per core)", lambda r: cpu_set.train_batches(b, r, aug), args.rounds)
    res["pil_eval_per_core"] = measure(
        "pil eval (per core)", lambda r: pil_batches(root, b, 0, False, r), args.rounds)
    res["new_cpu_eval_per_core"] = measure(
        "new cpu eval (per core)", lambda r: cpu_set.eval_batches(b), args.rounds)
    key = "cpu_images_per_s"
    res["ratio_new_vs_pil"] = round(res["new_cpu_train_per_core"][key]
                                    / res["pil_train_per_core"][key], 3)
    res["ratio_new_vs_pil_eval"] = round(res["new_cpu_eval_per_core"][key]
                                         / res["pil_eval_per_core"][key], 3)
    if workers > 0:  # every core, through loader workers (wall clock)
        res["workers"] = workers
        res["pil_train_workers"] = measure(
            f"pil train ({workers} workers)", lambda r: pil_batches(root, b, workers, True, r),
            args.rounds, cpu_time=False)
        many = new_set(root, n, workers, "cpu", "cpu")
        res["new_cpu_train_workers"] = measure(
            f"new cpu train ({workers} workers, persistent)",
            lambda r: many.train_batches(b, r, aug), args.rounds, cpu_time=False)
    if torch.cuda.is_available():
        torch.set_num_threads(max(1, cores // 2))
        dev = "cuda"
        res["gpu"] = torch.cuda.get_device_name()
        w = max(workers, 2)
        gpu_set = new_set(root, n, w, "device", dev)
        res["new_gpu_train_per_gpu"] = measure(
            f"new gpu train ({w} file-reading workers)",
            lambda r: gpu_set.train_batches(b, r, aug), args.rounds, dev, cpu_time=False)
        cpu_dev = new_set(root, n, max(workers, 2), "cpu", dev)
        res["new_cpu_decode_train_to_gpu"] = measure(
            "new cpu decode -> gpu train", lambda r: cpu_dev.train_batches(b, r, aug),
            args.rounds, dev, cpu_time=False)
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

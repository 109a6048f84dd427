"""Every batch a model sees is laid out as a freshly allocated tensor of its memory format.

oneDNN chooses its convolution kernels from the input's strides. A 1-channel batch whose
strides are both NCHW- and NHWC-contiguous (digits: N x 1 x 8 x 8 with strides (64, 1, 8, 1))
sends it to an NHWC kernel (``brg_conv_bwd:avx2``) whose backward pass corrupts the heap on
x86 machines with AVX2 but without AVX-512: "double free or corruption", exit 134.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from conftest import SRC
from lottery_mia.data import (TensorImageSet, as_model_input, check_model_input,
                              load_in_memory, standard_strides)


def test_standard_strides_match_fresh_tensors():
    for shape in [(64, 1, 8, 8), (3, 3, 32, 32), (5, 10), (1, 1, 1, 1)]:
        assert standard_strides(shape) == torch.empty(shape).stride()
    x = torch.empty(64, 1, 8, 8, memory_format=torch.channels_last)
    assert standard_strides((64, 1, 8, 8), channels_last=True) == x.stride()


def test_an_ambiguous_layout_is_rewritten_not_trusted():
    ambiguous = torch.randn(64, 8, 8, 1).permute(0, 3, 1, 2)  # NHWC viewed as NCHW
    assert ambiguous.is_contiguous()  # why Tensor.contiguous() alone does not help
    assert ambiguous.stride() == (64, 1, 8, 1)
    fixed = as_model_input(ambiguous)
    assert fixed.stride() == (64, 64, 8, 1) and torch.equal(fixed, ambiguous)
    check_model_input(fixed)
    with pytest.raises(AssertionError, match="strides"):
        check_model_input(ambiguous)
    again = torch.randn(2, 3, 4, 4)
    assert as_model_input(again) is again  # already standard: no copy


def test_the_batch_producer_hands_standard_batches():
    x, y = load_in_memory("digits", None, "all", np.arange(200), key="datasets.digits.root")
    data = TensorImageSet(x, y, (0.5,), (0.5,))
    from lottery_mia.data import Augment

    for xb, _ in data.train_batches(64, 0, Augment(crop_padding=1, hflip=True)):
        assert xb.stride() == standard_strides(xb.shape)
    for xb, _ in data.eval_batches(64):
        assert xb.stride() == standard_strides(xb.shape)


def test_a_width_4_resnet18_on_1_channel_8x8_images_trains_on_an_avx2_cpu(tmp_path):
    """The regression test: a few dozen training steps of the pipeline's own loop, with
    oneDNN capped at AVX2 (``ONEDNN_MAX_CPU_ISA``) so that the kernel AVX2-only machines
    use runs on any x86-64 CPU. Before every batch was rewritten to standard strides this
    aborted with heap corruption (exit 134) after a few epochs."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        import torch
        from lottery_mia.data import TensorImageSet, load_in_memory
        from lottery_mia.networks import build_model
        from lottery_mia.recipe import Recipe
        from lottery_mia.training import run_training

        torch.set_num_threads(1)
        torch.manual_seed(0)
        x, y = load_in_memory("digits", None, "all", np.arange(400), key="digits")
        train = TensorImageSet(x[:300], y[:300], (0.5,), (0.5,))
        test = TensorImageSet(x[300:], y[300:], (0.5,), (0.5,))
        model = build_model("resnet18", 10, width=4, in_channels=1, small_input=True)
        recipe = Recipe.from_dict({"epochs": 25, "batch_size": 64, "lr": 0.05,
                                   "eval_every": 5, "num_workers": 0})
        res = run_training(model, train, test, recipe, seed=0, device=torch.device("cpu"))
        print("trained", res["train_acc"])
    """))
    env = dict(os.environ, PYTHONPATH=str(SRC), ONEDNN_MAX_CPU_ISA="AVX2")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "trained" in proc.stdout


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("decode", ["cpu", "device"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_imagenet_path_and_rank_parts_hand_standard_batches(tmp_path, decode,
                                                                channels_last):
    """Batches from image files (either decode path) and a rank's part of an in-memory
    batch are laid out as fresh tensors of the model's memory format too."""
    from conftest import write_tiny_imagefolder
    from lottery_mia.data import Augment, FolderImageSet

    root = write_tiny_imagefolder(tmp_path / "imagenet", classes=2, per_class=3, size=20)
    ds = FolderImageSet(root, "val", np.arange(6), (0.5,) * 3, (0.5,) * 3, num_workers=0,
                        channels_last=channels_last, image_size=16, decode=decode)
    for xb, _ in list(ds.train_batches(4, 0, Augment(hflip=True))) + list(ds.eval_batches(4)):
        assert xb.stride() == standard_strides(xb.shape, channels_last)
    x, y = load_in_memory("digits", None, "all", np.arange(64), key="datasets.digits.root")
    data = TensorImageSet(x, y, (0.5,), (0.5,), channels_last=channels_last)
    for shard in [(0, 2), (1, 2)]:
        for xb, _ in data.train_batches(16, 0, Augment(crop_padding=1, hflip=True),
                                        shard=shard):
            assert xb.shape[0] == 8 and xb.stride() == standard_strides(xb.shape,
                                                                        channels_last)

"""lottery_mia.checkpoints: the files a network, a mask and a resume state are kept in."""

from __future__ import annotations

import pytest
import torch

from lottery_mia.checkpoints import (CorruptFileError, check_trained_network, load_checkpoint,
                                     load_resume, mask_digest, model_spec, read_tensors,
                                     resume_fingerprint, save_checkpoint, save_resume,
                                     tensors_digest, write_tensors)
from lottery_mia.networks import build_model


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(**model_spec("resnet18", "digits", 4))


def test_a_checkpoint_round_trips_bit_for_bit_with_its_spec_and_identity(tmp_path):
    model = _model()
    spec = model_spec("resnet18", "digits", 4)
    ident = {"dataset": "digits", "arch": "resnet18", "seed": 0, "mask_digest": None}
    save_checkpoint(tmp_path / "model.pt", model, spec, identity=ident, epoch=3)
    back, meta = load_checkpoint(tmp_path / "model.pt")
    assert meta["model"] == spec and meta["epoch"] == 3 and meta["identity"] == ident
    assert tensors_digest(back.state_dict()) == tensors_digest(model.state_dict())
    check_trained_network(tmp_path / "model.pt", meta, back,
                          {"dataset": "digits", "arch": "resnet18", "seed": 0})
    with pytest.raises(CorruptFileError, match="seed=0.*seed=1"):
        check_trained_network(tmp_path / "model.pt", meta, back, {"seed": 1})


def test_a_pruned_network_must_carry_its_folders_mask(tmp_path):
    from conftest import magnitude_mask

    model = _model()
    mask = magnitude_mask(model, 0.5)
    mask.apply_(model)
    ident = {"seed": 0, "mask_digest": mask_digest(mask)}
    save_checkpoint(tmp_path / "model.pt", model, model_spec("resnet18", "digits", 4),
                    identity=ident)
    back, meta = load_checkpoint(tmp_path / "model.pt")
    check_trained_network("m", meta, back, {"seed": 0}, mask=mask, mask_path="mask.pt")
    other = magnitude_mask(_model(1), 0.5)
    with pytest.raises(CorruptFileError, match="not trained with the mask"):
        check_trained_network("m", meta, back, {"seed": 0}, mask=other, mask_path="mask.pt")
    with pytest.raises(CorruptFileError, match="pruned network, but this job reads a dense"):
        check_trained_network("m", meta, back, {"seed": 0})


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"PK\x03\x04broken zip"])
def test_an_unreadable_file_names_itself_and_the_remedy(tmp_path, content):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=r"model\.pt.*(delete it|rerun)"):
        load_checkpoint(path)


def test_tensors_and_metadata_are_written_without_pickle(tmp_path):
    write_tensors(tmp_path / "t.pt", {"a": torch.arange(6).reshape(2, 3)}, {"kind": "x"})
    tensors, meta = read_tensors(tmp_path / "t.pt", "test file")
    assert meta == {"kind": "x"} and torch.equal(tensors["a"], torch.arange(6).reshape(2, 3))
    assert b"pickle" not in (tmp_path / "t.pt").read_bytes()


def _optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _step(model, opt, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 1, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)
    opt.zero_grad()
    model(x).sum().backward()
    opt.step()


def test_a_resume_state_restores_momentum_in_the_weights_memory_layout(tmp_path):
    """channels_last weights (as on CUDA) get channels_last momentum buffers back: CUDA's
    fused SGD refuses a buffer whose strides differ from its parameter's."""
    model = _model().to(memory_format=torch.channels_last)
    opt = _optimizer(model)
    _step(model, opt)
    fp = resume_fingerprint(recipe_fingerprint="r", seed=0, start_epoch=0, key="k", model=model)
    save_resume(tmp_path / "resume.pt", fingerprint=fp, model=model, optimizer=opt,
                history=[{"epoch": 1}], captured=None, next_epoch=1)
    fresh = _model(5).to(memory_format=torch.channels_last)
    opt2 = _optimizer(fresh)
    got = load_resume(tmp_path / "resume.pt", fingerprint=fp, model=fresh, optimizer=opt2,
                      start_epoch=0, epochs=3)
    assert got["next_epoch"] == 1 and got["history"] == [{"epoch": 1}]
    assert tensors_digest(fresh.state_dict()) == tensors_digest(model.state_dict())
    conv = [p for p in fresh.parameters() if p.dim() == 4]
    assert conv and all(opt2.state[p]["momentum_buffer"].stride() == p.stride() for p in conv)
    assert any(p.stride() != p.contiguous().stride() for p in conv)  # the case is exercised
    for p, q in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(opt.state[p]["momentum_buffer"], opt2.state[q]["momentum_buffer"])
    # the next step from the restored state is the next step of the original
    _step(model, opt, seed=1)
    _step(fresh, opt2, seed=1)
    assert tensors_digest(fresh.state_dict()) == tensors_digest(model.state_dict())


def test_a_foreign_resume_state_is_discarded_and_leaves_the_model_untouched(tmp_path, capsys):
    model = _model()
    opt = _optimizer(model)
    _step(model, opt)
    save_resume(tmp_path / "resume.pt", fingerprint="theirs", model=model, optimizer=opt,
                history=[], captured=None, next_epoch=1)
    fresh = _model(5)
    before = tensors_digest(fresh.state_dict())
    assert load_resume(tmp_path / "resume.pt", fingerprint="ours", model=fresh,
                       optimizer=_optimizer(fresh), start_epoch=0, epochs=3) is None
    assert tensors_digest(fresh.state_dict()) == before
    assert not (tmp_path / "resume.pt").exists()
    assert "belongs to another run" in capsys.readouterr().out

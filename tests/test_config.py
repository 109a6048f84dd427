"""The typed config (lottery_mia.config): every malformed value fails at DAG time in one line
that names the key and the fix; the shipped configs pass; the JSON schema is generated from
the typed config and kept in step."""

from __future__ import annotations

import copy
import json

import pytest

from conftest import ROOT, tiny_config
from lottery_mia.config import ConfigError, load_config, schema


def config_error(cfg: dict) -> str:
    """The message a config gets at DAG time."""
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    return str(err.value)



def _cifar(c):
    c["datasets"]["cifar"] = {"source": "cifar10", "root": None, "download": True}
    c["training"]["cifar"] = c["training"]["digits"]



CONFIG_CASES = [
    # (id, change, words the message must contain: the key and the remedy)
    ("top-level-typo", lambda c: c.update(sparsites=c.pop("sparsities")),
     ["sparsites", "did you mean 'sparsities'", "allowed"]),
    ("nested-typo", lambda c: c["attack"].update(sampel_sizes=[100]),
     ["'attack.sampel_sizes'", "sampel_sizes", "did you mean 'sample_sizes'"]),
    ("recipe-typo", lambda c: c["training"]["digits"]["resnet18"].update(epoch=3),
     ["training.digits.resnet18", "'epoch'", "allowed"]),
    ("bad-enum", lambda c: c["attack"].update(features="soft"),
     ["attack.features", "'soft'", "softmax"]),
    ("bad-device", lambda c: c.update(device="gpu"), ["'device'", "gpu"]),
    ("mlp-typo", lambda c: c["attack"]["mlp"].update(hiden_layer_sizes=[8]),
     ["attack.mlp", "hiden_layer_sizes", "did you mean 'hidden_layer_sizes'"]),
    ("rewind-equals-epochs", lambda c: c["pruning"].update(rewind_epoch=2),
     ["pruning.rewind_epoch", "epochs=2", "lower it"]),
    ("rewind-beyond-epochs", lambda c: c["pruning"].update(rewind_epoch=50),
     ["pruning.rewind_epoch", "lower it"]),
    ("rewind-both", lambda c: c["pruning"].update(rewind_step=10),
     ["pruning.rewind_epoch", "pruning.rewind_step", "exactly one"]),
    ("pruning-method-typo", lambda c: c["pruning"].update(methods=["oneshot", "imp", "snp"]),
     ["pruning.methods", "'snp'", "did you mean 'snip'"]),
    ("pruning-setting-typo", lambda c: c["pruning"].update(imp={"fracton": 0.2}),
     ["pruning.imp", "fracton", "did you mean 'fraction'"]),
    ("pruning-control-without-base", lambda c: c["pruning"].update(methods=["random_mask"]),
     ["pruning.methods", "random_mask", "add 'oneshot'"]),
    ("duplicate-sample-size", lambda c: c["attack"].update(sample_sizes=[100, 200, 200]),
     ["attack.sample_sizes", "200 more than once", "list each value once"]),
    ("duplicate-dataset-sample-size",
     lambda c: c["datasets"]["digits"].update(attack_sample_sizes=[100, 100]),
     ["datasets.digits.attack_sample_sizes", "more than once"]),
    ("duplicate-sparsity", lambda c: c.update(sparsities=[0.0, 0.5, 0.5]),
     ["'sparsities'", "more than once"]),
    ("duplicate-transfer-sparsity", lambda c: c["transfer"].update(sparsities=[0.0, 0.8, 0.8]),
     ["transfer.sparsities", "more than once"]),
    ("duplicate-transfer-arch",
     lambda c: c["transfer"].update(architectures=["resnet18", "resnet18"]),
     ["transfer.architectures", "more than once"]),
    ("duplicate-milestone",
     lambda c: c["training"]["digits"]["resnet18"].update(schedule="step", milestones=[1, 1]),
     ["training.digits.resnet18.milestones", "more than once"]),
    ("sparsities-same-folder", lambda c: c.update(sparsities=[0.0, 0.5, 0.5000000001]),
     ["'sparsities'", "sparsity-0.5", "6 significant digits"]),
    ("huge-seed", lambda c: c.update(replicates=[2**40]), ["'replicates.0'", "maximum"]),
    ("huge-split-seed", lambda c: c["datasets"]["digits"].update(split_seed=2**33),
     ["datasets.digits.split_seed", "maximum"]),
    ("huge-attack-seed", lambda c: c["attack"].update(seed=2**32), ["attack.seed", "maximum"]),
    ("download-without-root", _cifar, ["datasets.cifar.download", "datasets.cifar.root"]),
    ("digits-members-below-classes", lambda c: c["datasets"]["digits"].update(members=5),
     ["datasets.digits.members", "10 classes", "raise it"]),
    ("digits-nonmembers-below-classes", lambda c: c["datasets"]["digits"].update(nonmembers=4),
     ["datasets.digits.nonmembers", "raise it"]),
    ("attack-size-too-small", lambda c: c["attack"].update(sample_sizes=[2, 100]),
     ["attack.sample_sizes", "too small to split", "raise it"]),
    ("attack-size-too-small-for-fraction",
     lambda c: c["attack"].update(sample_sizes=[4, 100], test_fraction=0.9),
     ["attack.sample_sizes", "test_fraction=0.9"]),
    ("unknown-architecture", lambda c: c.update(architectures=["resnet18", "resnet34"]),
     ["architectures", "resnet34"]),
    ("sample-size-above-data", lambda c: c["attack"].update(sample_sizes=[2000]),
     ["attack.sample_sizes", "lower it"]),
    # values the attack's own estimator refuses (scikit-learn's parameter validation)
    ("mlp-bad-value", lambda c: c["attack"]["mlp"].update(hidden_layer_sizes="abc"),
     ["attack.mlp", "hidden_layer_sizes", "'abc'"]),
    ("svm-bad-value", lambda c: c["attack"]["svm"].update(C=-1.0),
     ["attack.svm", "'C' parameter", "-1"]),
    # the attacks' own settings, and a setting renamed with its estimator
    ("svm-bad-cap", lambda c: c["attack"]["svm"].update(exact_max_rows=0),
     ["attack.svm.exact_max_rows", "0", "integer >= 1", "null"]),
    ("svm-cap-typo", lambda c: c["attack"]["svm"].update(exact_max_row=10),
     ["attack.svm", "'exact_max_row'", "did you mean 'exact_max_rows'"]),
    ("mlp-bad-min-rows", lambda c: c["attack"]["mlp"].update(early_stopping_min_rows=1.5),
     ["attack.mlp.early_stopping_min_rows", "1.5"]),
    ("boosting-old-setting", lambda c: c["attack"].update(gradient_boosting={"n_estimators": 9}),
     ["attack.gradient_boosting", "'n_estimators' (now 'max_iter')"]),
    ("lr-nan", lambda c: c["training"]["digits"]["resnet18"].update(lr=float("nan")),
     ["training.digits.resnet18.lr", "not a finite number"]),
    ("lr-inf", lambda c: c["training"]["digits"]["resnet50"].update(lr=float("inf")),
     ["training.digits.resnet50.lr", "not a finite number"]),
    ("momentum-nan", lambda c: c["training"]["digits"]["resnet18"].update(
        momentum=float("nan")), ["training.digits.resnet18.momentum", "finite"]),
    ("rewind-step-beyond-run",
     lambda c: c["pruning"].update(rewind_epoch=None, rewind_step=10_000),
     ["pruning.rewind_step", "10000", "optimizer steps", "lower it"]),
    ("odd-reference-count", lambda c: c["references"].update(count=3),
     ["references.count", "odd", "exactly half", "use 2 or 4"]),
]



@pytest.mark.parametrize("change, words", [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_a_malformed_config_names_the_key_and_the_fix(change, words):
    cfg = copy.deepcopy(tiny_config())
    change(cfg)
    msg = config_error(cfg)
    assert len(msg.splitlines()) == 1 and len(msg) < 1000, msg
    for w in words:
        assert w in msg, (w, msg)



def test_the_default_and_tiny_configs_pass():
    import yaml

    load_config(tiny_config())
    for name in ("config.yaml", "paper.yaml"):
        load_config(yaml.safe_load((ROOT / "config" / name).read_text()))



def test_a_missing_root_warns_at_dag_time():
    cfg = copy.deepcopy(tiny_config())
    cfg["datasets"]["cifar"] = {"source": "cifar10", "root": "/no/such/folder"}
    cfg["training"]["cifar"] = cfg["training"]["digits"]
    (w,) = load_config(cfg).root_warnings()
    assert "datasets.cifar.root" in w and "/no/such/folder" in w and "download" in w


def test_the_json_schema_is_generated_from_the_typed_config():
    """workflow/schemas/config.schema.json is `python -m lottery_mia.config`'s output."""
    committed = json.loads((ROOT / "workflow" / "schemas" / "config.schema.json").read_text())
    assert committed == json.loads(json.dumps(schema())), \
        "regenerate: .venv/bin/python -m lottery_mia.config > workflow/schemas/config.schema.json"


def test_every_key_has_a_type_a_default_or_is_required_and_a_description():
    from lottery_mia.config import Config

    def walk(model, path):
        for name, field in model.model_fields.items():
            key = f"{path}{name}"
            assert field.description or hasattr(field.annotation, "model_fields") or \
                name in ("threads", "runtime", "pruning", "confidences", "attack",
                         "references", "transfer", "report"), key
            sub = field.annotation
            if isinstance(sub, type) and hasattr(sub, "model_fields"):
                walk(sub, key + ".")

    walk(Config, "")


def test_defaults_are_filled_in_and_no_literal_default_is_read_elsewhere():
    import re

    cfg = load_config(tiny_config())
    assert cfg.threads.train == 1 and cfg.runtime.train_minutes == 2880
    assert cfg.references.methods == ["oneshot"] and cfg.report.slices == ["mlp", "loss"]
    offenders = []
    for p in list((ROOT / "rules").glob("*.smk")) + [ROOT / "Snakefile"]:
        if re.search(r"config(\[|\.get\()", p.read_text()):
            offenders.append(p.name)
    assert not offenders, offenders


def test_half_precision_logits_reach_the_scoring_job_only_when_asked_for():
    """confidences.logits_dtype: float16/bfloat16 are accepted and handed to the scoring
    job's params; the default is not in them at all, so tables already scored keep their
    params (and do not rerun); anything else is refused, naming the key."""
    from lottery_mia.layout import ModelKey
    from lottery_mia.plan import Plan

    cfg = copy.deepcopy(tiny_config())
    cfg["confidences"]["logits_dtype"] = "float8"
    msg = config_error(cfg)
    assert "confidences.logits_dtype" in msg and "float16" in msg
    typed = load_config(tiny_config())
    model = ModelKey("digits", "resnet18", "seed-0", "dense", 0.0)
    assert "logits_dtype" not in Plan(typed).score_params(model)
    for dtype in ("float16", "bfloat16"):
        cfg = copy.deepcopy(tiny_config())
        cfg["confidences"]["logits_dtype"] = dtype
        assert Plan(load_config(cfg)).score_params(model)["logits_dtype"] == dtype


def test_a_dataset_can_train_a_part_of_the_architectures():
    """datasets.<name>.architectures: that dataset's grid has only those architectures and
    needs only their recipes; an architecture outside 'architectures', or a transfer
    architecture the transfer dataset does not train, is named."""
    from lottery_mia.plan import Plan

    cfg = tiny_config()
    assert len(cfg["architectures"]) > 1
    first = cfg["architectures"][0]
    cfg["datasets"]["digits"]["architectures"] = [first]
    for arch in cfg["architectures"][1:]:
        cfg["training"]["digits"].pop(arch)
    cfg["transfer"]["architectures"] = [first]
    plan = Plan(load_config(copy.deepcopy(cfg)))
    assert plan.grids["digits"].architectures == (first,)
    assert {m.arch for m in plan.models()} == {first}
    bad = copy.deepcopy(cfg)
    bad["datasets"]["digits"]["architectures"] = ["vgg16_bn"]
    with pytest.raises(ConfigError, match=r"datasets\.digits\.architectures"):
        load_config(bad)
    bad = copy.deepcopy(cfg)
    bad["transfer"]["architectures"] = list(tiny_config()["architectures"])
    with pytest.raises(ConfigError, match=r"transfer\.architectures"):
        load_config(bad)

"""The training stage's pipelines and calibration (autograder.training, autograder.calibration).

Pure parts (sparsity, the global-prune pattern check, thresholds, refusing a missing or stale
calibration) run on small arrays. The sandboxed pipelines run on a tiny budget (a few batches of
16 images, a random-init checkpoint) with the reference and with broken copies of it, and
assert what the grading tests rely on: the observations catch each breakage.
"""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from autograder import calibration, paths
from autograder.calibration import Calibration, NotCalibrated, thresholds
from autograder.errors import GraderError
from autograder.staff import reference
from autograder.training.budget import BUDGETS, Budget
from autograder.training.judging import distinct_values, mask_disagreements, sparsity, weights_moved
from autograder.training.memory import STAGE_MEMORY, require_memory
from autograder.training.pipelines import Pipelines
from autograder.training.setting import Setting

paths.ensure_provided_importable()
from hw4.data import Dataset, generate_shapes  # noqa: E402
from hw4.resnet import ResNetCIFAR, prunable_layers  # noqa: E402

pytestmark = pytest.mark.usefixtures("shared_zygotes")  # the pipelines' verdicts, not zygotes
PRUNABLE = [name for name, _ in prunable_layers(ResNetCIFAR(20))]
TINY = Budget("tiny", batch_size=16, train_images=64, test_images=40, masked_batches=2,
              qat_batches=2, sparse_qat_batches=2, epochs=11, batches_per_epoch=1, threads=1)


def random_state(seed=0) -> dict:
    torch.manual_seed(seed)
    return {k: v.numpy().copy() for k, v in ResNetCIFAR(20).state_dict().items()}


@pytest.fixture(scope="module")
def tiny_setting(tmp_path_factory) -> Setting:
    checkpoint = tmp_path_factory.mktemp("checkpoint") / "random.pt"
    torch.manual_seed(0)
    torch.save(ResNetCIFAR(20).state_dict(), checkpoint)
    x_train, y_train = generate_shapes(8, seed=1)
    x_test, y_test = generate_shapes(4, seed=2)
    dataset = Dataset("tiny-shapes", x_train, y_train, x_test, y_test, tuple("abcdefghij"))
    return Setting(dataset, checkpoint, "cpu", TINY)


# -- pure parts ---------------------------------------------------------------------------------

def test_sparsity_counts_exact_zeros_of_prunable_layers_only():
    state = random_state()
    state["head_conv.0.conv.weight"][:8] = 0  # 8 of 16 filters: half of the layer
    state["body_op.3.id_mapping.0.conv.weight"][:] = 0  # not prunable: must not count
    layers, total = sparsity(state, PRUNABLE)
    assert len(layers) == 20
    assert layers["head_conv.0.conv"] == 0.5
    assert layers["final_fc.linear"] == 0.0
    assert total == pytest.approx(216 / 268_336)


def _global_prune(state: dict, rule) -> tuple[dict, dict]:
    net = ResNetCIFAR(20)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    before = {name: layer.weight.detach().numpy().copy() for name, layer in prunable_layers(net)}
    rule(net)
    after = {name: layer.weight.detach().numpy().copy() for name, layer in prunable_layers(net)}
    return before, after


def test_reference_global_prune_matches_its_own_pattern():
    before, after = _global_prune(random_state(), lambda net: reference("lab2").global_prune_by_percentage(net, 80.0))
    assert sum(mask_disagreements(before, after).values()) == 0


def test_layer_wise_prune_is_not_the_global_pattern():
    prune = reference("lab2").prune_by_percentage
    before, after = _global_prune(random_state(), lambda net: [prune(layer, 80.0) for _, layer in prunable_layers(net)])
    wrong = mask_disagreements(before, after)
    assert sum(wrong.values()) > 1000
    assert wrong["head_conv.0.conv"] > 0


def test_global_prune_that_scales_kept_weights_is_caught():
    def scaled(net):
        reference("lab2").global_prune_by_percentage(net, 80.0)
        with torch.no_grad():
            net.final_fc.linear.weight.mul_(1.5)
    before, after = _global_prune(random_state(), scaled)
    wrong = mask_disagreements(before, after)
    assert wrong["final_fc.linear"] > 0 and wrong["head_conv.0.conv"] == 0


def test_strict_mask_at_a_tie_is_accepted():
    before = {"a": np.array([0.1, 0.2, 0.3, 0.4, 0.5], dtype=np.float32)}
    threshold = np.percentile(np.abs(before["a"]).astype(np.float64), 80.0)  # 0.42, no tie
    kept = before["a"] >= threshold
    assert mask_disagreements(before, {"a": np.where(kept, before["a"], 0)})["a"] == 0
    tied = {"a": np.array([0.1, 0.2, 0.3, 0.5, 0.5], dtype=np.float32)}  # 80th percentile = 0.5
    strict = {"a": np.where(tied["a"] > 0.5, tied["a"], 0)}  # prunes the weights AT the threshold
    assert mask_disagreements(tied, strict)["a"] == 0
    assert mask_disagreements(tied, {"a": np.where(tied["a"] > 0.25, tied["a"], 0)})["a"] == 1


def test_distinct_values_per_layer():
    assert distinct_values({"x": np.array([[1.0, 1.0], [2.0, 0.0]])}) == {"x": 3}


def test_thresholds_are_the_worst_seed_minus_the_margin_and_flag_a_weak_separation():
    checks = calibration.TRAINED_CHECKS
    per_seed = [{check: 0.60 for check in checks}, {check: 0.50 for check in checks}]
    broken = {check: 0.10 for check in checks}
    broken["4.4"] = 0.45
    result = thresholds(per_seed, broken, margin=0.03)
    assert result["3.3"]["threshold"] == pytest.approx(0.47)
    assert result["3.3"]["reference"] == [0.60, 0.50]
    assert result["3.3"]["separated"] is True
    assert result["4.4"]["separated"] is False


def test_missing_calibration_refuses_with_the_command(tiny_setting, monkeypatch, tmp_path):
    monkeypatch.setattr(calibration, "CALIBRATION_DIR", tmp_path)
    with pytest.raises(NotCalibrated, match=r"not calibrated for tiny-shapes/cpu/tiny: run "
                                            r"`python -m autograder calibrate --data"):
        Calibration.load(tiny_setting)


def test_calibration_of_other_images_is_refused(tiny_setting, monkeypatch, tmp_path):
    monkeypatch.setattr(calibration, "CALIBRATION_DIR", tmp_path)
    record = {"fingerprint": dict(tiny_setting.fingerprint, train="0" * 16), "checks": {},
              "pretrained": 0.1, "ptq": {}}
    (tmp_path / f"{tiny_setting.key}.json").write_text(json.dumps(record))
    with pytest.raises(NotCalibrated, match="measured on other images"):
        Calibration.load(tiny_setting)
    record["fingerprint"] = tiny_setting.fingerprint
    (tmp_path / f"{tiny_setting.key}.json").write_text(json.dumps(record))
    assert Calibration.load(tiny_setting).pretrained == 0.1


def test_calibrate_command_writes_the_measured_record_where_load_reads_it(tiny_setting, monkeypatch,
                                                                          tmp_path, capsys):
    """The CLI's last step: the record goes to the setting's path (folder made), and it loads."""
    import argparse

    from autograder import calibrate
    monkeypatch.setattr(calibration, "CALIBRATION_DIR", tmp_path / "calibration")
    monkeypatch.setattr(Setting, "resolve", classmethod(lambda cls, *a, **k: tiny_setting))
    checks = {check: {"reference": [0.9], "broken": 0.1, "threshold": 0.87, "separated": True}
              for check in calibration.TRAINED_CHECKS}
    record = {"key": tiny_setting.key, "fingerprint": tiny_setting.fingerprint, "checks": checks,
              "pretrained": 0.9, "ptq": {"4": 0.8}}
    monkeypatch.setattr(calibrate, "calibrate", lambda setting, seeds, margin: record)
    args = argparse.Namespace(data=None, checkpoint=None, device="cpu", seeds=1,
                              margin=calibration.MARGIN, force=False)
    assert calibrate.run(args) == 0
    assert f"{tiny_setting.key}.json" in capsys.readouterr().out
    assert Calibration.load(tiny_setting).thresholds == {c: 0.87 for c in calibration.TRAINED_CHECKS}


def test_a_relative_checkpoint_is_resolved_where_it_was_given(tmp_path, monkeypatch):
    """The trusted forks that open it run in the sandbox's folder: a path relative to the
    TA's folder (``--checkpoint ../shared/...``) must reach them as the file it named."""
    monkeypatch.chdir(tmp_path)
    setting = Setting.resolve(checkpoint="model.pt", device="cpu")
    assert setting.checkpoint == tmp_path / "model.pt"


@pytest.mark.parametrize("device_type", sorted(BUDGETS))
def test_every_budget_fits_one_epoch_of_the_embedded_data(device_type):
    """A loader that runs out before a pipeline's steps trains less than calibrated, and 3.3's
    check then fails a correct student ("trained on 20 of the 40 batches")."""
    from hw4.data import load_dataset
    assert BUDGETS[device_type].short_of(len(load_dataset(None).x_train)) == {}


def test_data_too_small_for_the_budget_stop_the_stage_with_a_staff_message(monkeypatch):
    from autograder.training import setting as setting_module
    greedy = dataclasses.replace(BUDGETS["cpu"], masked_batches=80)  # 5,000 images: 79 of 64
    monkeypatch.setitem(setting_module.BUDGETS, "cpu", greedy)
    with pytest.raises(GraderError) as refused:
        Pipelines(None, Setting.resolve(device="cpu"))  # as calibrate and the stage build it
    message = str(refused.value)
    assert "5000 training images" in message and "79 batches of 64" in message, message
    assert "3.3's masked fine-tune (masked_batches): 80" in message
    assert "qat_batches" not in message  # only the pipeline that is short


def test_committed_calibrations_hold_every_check():
    for path in sorted((paths.FIXTURES_DIR / "calibration").glob("*.json")):
        record = json.loads(path.read_text())
        assert set(record["checks"]) == set(calibration.TRAINED_CHECKS), path.name
        assert set(record["ptq"]) == {"6", "5", "4", "3", "2"}, path.name
        for check, entry in record["checks"].items():
            assert entry["threshold"] <= min(entry["reference"]) - record["margin"] + 1e-9, (path.name, check)


# -- sandboxed pipelines on a tiny budget ---------------------------------------------------------

def _broken_reference(tmp_path, replacements: dict) -> str:
    """A copy of the reference with ``{file: [(old, new), ...]}`` applied (each must match)."""
    for name in ("lab1.py", "lab2.py", "lab3.py", "answers.py"):
        shutil.copy(paths.REFERENCE_DIR / name, tmp_path / name)
    for name, edits in replacements.items():
        text = (tmp_path / name).read_text()
        for old, new in edits:
            assert old in text, (name, old)
            text = text.replace(old, new)
        (tmp_path / name).write_text(text)
    return str(tmp_path)


@pytest.fixture(scope="module")
def reference_run(tiny_setting):
    from autograder.sandbox import Sandbox
    with Sandbox(paths.REFERENCE_DIR, device="cpu") as sandbox:
        pipelines = Pipelines(sandbox, tiny_setting)
        yield {"masked": pipelines.masked_finetune(), "qat": pipelines.quantized_finetune(2),
               "sparse": pipelines.quantized_finetune(4, sparse=True),
               "global": pipelines.iterative_prune("global"), "pipelines": pipelines}


@pytest.mark.slow
def test_reference_masked_finetune_keeps_zeros_and_trains(reference_run, tiny_setting):
    outcome = reference_run["masked"]
    assert outcome.observed["steps"] == TINY.masked_batches
    assert outcome.observed["revived"] == [0] * TINY.masked_batches
    assert outcome.observed["replaced"] == []
    assert outcome.total_sparsity == pytest.approx(0.8, abs=1e-4)
    key = "body_op.0.conv1.0.conv.weight"
    assert not np.array_equal(outcome.state[key], reference_run["pipelines"].pruned_state[key])


@pytest.mark.slow
def test_reference_qat_quantizes_and_every_layer_gets_gradients(reference_run):
    outcome = reference_run["qat"]
    assert max(distinct_values(outcome.observed["forward"]).values()) <= 4
    assert set(outcome.observed["grads"].values()) == {TINY.qat_batches}
    assert reference_run["sparse"].observed["forward_zeros_lost"] == [0] * TINY.sparse_qat_batches


@pytest.mark.slow
def test_reference_global_iterative_schedule(reference_run):
    outcome = reference_run["global"]
    assert outcome.observed["schedule"] == [8.0 * (e + 1) for e in range(10)] + [None]
    assert outcome.total_sparsity == pytest.approx(0.8, abs=1e-4)
    assert sum(mask_disagreements(outcome.observed["before_last_prune"],
                                  outcome.observed["after_last_prune"]).values()) == 0
    revived = outcome.observed["revived"]
    assert all(sum(epoch) > 0 for epoch in revived[:9])  # prune=False lets weights regrow
    assert all(sum(epoch) == 0 for epoch in revived[9:])


@pytest.mark.slow
def test_broken_solutions_are_observed(tiny_setting, tmp_path):
    from autograder.sandbox import Sandbox
    submission = _broken_reference(tmp_path, {
        "lab2.py": [("        if prune:\n", "        if False:\n")],  # mask never re-applied
        "lab3.py": [("        return g, None, None", "        return None, None, None"),  # no STE grad
                    ("            wq = torch.where(w != 0, wq, torch.zeros_like(wq))",
                     "            pass")],  # keep_zeros ignored
    })
    with Sandbox(submission, device="cpu") as sandbox:
        pipelines = Pipelines(sandbox, tiny_setting)
        masked = pipelines.masked_finetune()
        assert masked.observed["revived"][0] > 0
        qat = pipelines.quantized_finetune(2)
        assert set(qat.observed["grads"].values()) == {0}
        sparse = pipelines.quantized_finetune(4, sparse=True)
        assert sparse.observed["forward_zeros_lost"][0] > 0


@pytest.mark.slow
def test_fine_tuning_without_a_step_moves_no_weight_and_the_reference_moves_some(
        tiny_setting, tmp_path, reference_run):
    """What the accuracy checks of 3.3-3.5 add (``require_training``): a loop without
    ``optimizer.step()`` leaves every prunable weight as it started, bit for bit."""
    from autograder.sandbox import Sandbox
    submission = _broken_reference(tmp_path, {"lab2.py": [("        optimizer.step()\n", "")]})
    pruned = reference_run["pipelines"].pruned_state
    start = {name: pruned[f"{name}.weight"] for name in PRUNABLE}
    assert weights_moved(start, reference_run["masked"].state) > 0
    with Sandbox(submission, device="cpu") as sandbox:
        assert weights_moved(start, Pipelines(sandbox, tiny_setting).masked_finetune().state) == 0


@pytest.mark.slow
def test_trusted_measurement_is_the_in_process_evaluation(reference_run, tiny_setting):
    """The accuracy measured in the zygote's trusted fork is the one this process gets from
    the same network, test images and reference STE (the calibrations rely on it)."""
    from hw4.data import test_loader
    from hw4.training import evaluate
    pipelines = reference_run["pipelines"]
    outcome = reference_run["sparse"]
    net = ResNetCIFAR(20, Nbits=4, ste=reference("lab3").STE, keep_zeros=True)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in outcome.state.items()})
    torch.set_num_threads(TINY.threads)
    here = evaluate(net, test_loader(tiny_setting.dataset, limit=TINY.test_images))
    assert outcome.accuracy == here
    assert pipelines.prunable == PRUNABLE
    assert pipelines.accuracies([(outcome.state, 4, True), (pipelines.pruned_state, None, False)])[0] == here


@pytest.mark.slow
def test_the_grading_process_never_imports_torch_for_the_training_stage(tmp_path):
    """Starting models, training and accuracy all happen in other processes (the sandbox's
    zygote and its forks): the process that judges holds NumPy and the data only."""
    import subprocess
    import sys
    torch.manual_seed(0)
    torch.save(ResNetCIFAR(20).state_dict(), tmp_path / "random.pt")
    code = f"""if True:
        import sys
        from autograder import paths
        from autograder.sandbox import Sandbox
        from autograder.training.pipelines import Pipelines
        from autograder.training.budget import Budget
        from autograder.training.setting import Setting
        paths.ensure_provided_importable()
        from hw4.data import Dataset, generate_shapes
        (x_train, y_train), (x_test, y_test) = generate_shapes(8, seed=1), generate_shapes(4, seed=2)
        dataset = Dataset("tiny-shapes", x_train, y_train, x_test, y_test, tuple("abcdefghij"))
        setting = Setting(dataset, {str(tmp_path / "random.pt")!r}, "cpu", Budget(**{dataclasses.asdict(TINY)!r}))
        with Sandbox(paths.REFERENCE_DIR, device="cpu") as sandbox:
            pipelines = Pipelines(sandbox, setting)
            accuracy = pipelines.masked_finetune().accuracy
            pipelines.post_training_quantization()
        print("torch" in sys.modules, 0 <= accuracy <= 1)
    """
    ran = subprocess.run([sys.executable, "-c", code], cwd=paths.ROOT, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.split()[-2:] == ["False", "True"]


def test_calibration_key_names_dataset_device_type_and_budget(tiny_setting):
    assert tiny_setting.key == "tiny-shapes-cpu-tiny"
    assert dataclasses.replace(tiny_setting, device="cuda:1").key == "tiny-shapes-cuda-tiny"


def test_setting_keeps_copies_of_the_prefixes_its_budget_uses(tmp_path, monkeypatch):
    """The trusted process holds the images a grade uses, not views into the whole data set."""
    x = np.arange(30 * 32 * 32 * 3, dtype=np.uint64).astype(np.uint8).reshape(30, 32, 32, 3)
    y = np.arange(30) % 10
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[::-1], y_test=y[::-1],
             classes=np.array([str(i) for i in range(10)]))
    monkeypatch.setitem(BUDGETS, "cpu", dataclasses.replace(TINY, train_images=20,
                                                                      test_images=10))
    dataset = Setting.resolve(path, device="cpu").dataset
    assert dataset.x_train.shape == (20, 32, 32, 3) and dataset.x_test.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(dataset.x_train, x[:20])
    np.testing.assert_array_equal(dataset.y_test, y[::-1][:10])
    assert all(array.base is None
               for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test))


@pytest.mark.skipif(not hasattr(__import__("ctypes").CDLL(None), "malloc_trim"),
                    reason="malloc_trim is glibc's; elsewhere release_free_memory does nothing")
def test_release_free_memory_returns_the_heaps_free_pages():
    """Freed blocks between live ones stay in glibc's heap until trimmed (what an evaluation
    leaves behind while a child trains). Measured in a fresh process: the heap of a test worker
    that ran other tests before (pytest-xdist) says nothing about this one."""
    import subprocess
    import sys
    code = """if True:
        import numpy as np, psutil
        from autograder.training.memory import release_free_memory
        process = psutil.Process()
        freed, live = [], []
        for _ in range(1600):  # 100 MiB in 64 KiB blocks, each followed by a small live one
            freed.append(np.ones(64 * 1024 // 8))
            live.append(np.ones(16))
        del freed
        before = process.memory_info().rss
        release_free_memory()
        print(before - process.memory_info().rss)
    """
    from autograder import paths
    ran = subprocess.run([sys.executable, "-c", code], cwd=paths.ROOT, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert int(ran.stdout.split()[-1]) > 50 * 2**20


def test_training_stage_refuses_a_machine_too_small_with_what_to_change(tiny_setting):
    cpu = dataclasses.replace(tiny_setting, device="cpu")
    with pytest.raises(GraderError, match=r"0\.65 GiB.*512 MiB.*default 768 MB.*HW4_STAGE=unit"):
        require_memory(cpu, limit=512 * 2**20)
    require_memory(cpu, limit=STAGE_MEMORY["cpu"])
    require_memory(cpu, limit=int(768e6))  # Gradescope's default fits


# -- the committed calibrations match the data they were measured on ---------------------------

def _committed(setting: Setting) -> Calibration:
    try:
        return Calibration.load(setting)
    except NotCalibrated as error:
        pytest.fail(f"the committed calibration is missing or stale: {error}")


def test_embedded_calibration_is_current():
    """Changing the embedded data, checkpoint or CPU budget needs a new calibration."""
    from hw4.resnet import embedded_checkpoint
    try:
        embedded_checkpoint()
    except FileNotFoundError as error:
        pytest.skip(f"the embedded checkpoint is not built: {error}")
    _committed(Setting.resolve(device="cpu"))


@pytest.mark.shared_data
def test_shared_data_calibration_is_current():
    shared = paths.shared_data_dir()
    if shared is None:
        pytest.skip("HW4_SHARED is not set: the real checkpoint and CIFAR-10 subset are absent")
    _committed(Setting.resolve(shared / "cifar10_jpeg_q75.npz", shared / "pretrained_model.pt", "cpu"))

"""The model contract, checked once for every registered model.

A model joins these tests by being registered (``tfdgm.registry.register``).
"""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import MODEL_NAMES, endpoint_inputs, make_tiny

from tfdgm import NoDensityError, registry

pytestmark = pytest.mark.parametrize("name", MODEL_NAMES)


def _check_support(model, x):
    x = np.asarray(x)
    assert np.isfinite(x).all()
    if model.support == "binary":
        assert set(np.unique(x)) <= {0.0, 1.0}
    elif model.support == "categorical":
        assert (x == np.round(x)).all() and x.min() >= 0 and x.max() < model.num_categories


def _endpoint_values(model, dataset):
    """Values of every exported endpoint (except metadata) on fixed inputs."""
    out = {}
    for key, (fn, signature) in model.export_endpoints().items():
        result = fn(*[tf.constant(v) for v in endpoint_inputs(signature, dataset)])
        flat = result if isinstance(result, dict) else {"": result}
        for sub, value in flat.items():
            out[f"{key}/{sub}"] = np.asarray(value)
    return out


def test_fit_evaluate_sample_log_prob(name):
    model, dataset = make_tiny(name)
    history = model.fit(dataset.x_train, epochs=2, batch_size=32, verbose=0)
    assert set(model.metric_names) <= set(history.history)
    assert "loss" in history.history
    for key in model.metric_names:
        assert np.isfinite(history.history[key]).all(), (key, history.history[key])
    results = model.evaluate(dataset.x_test, batch_size=32, verbose=0, return_dict=True)
    assert set(model.metric_names) <= set(results)
    assert all(np.isfinite(v) for v in results.values())

    samples = model.sample(7, seed=(1, 2))
    assert samples.dtype == tf.float32
    assert tuple(samples.shape) == (7, *model.event_shape)
    _check_support(model, samples)
    np.testing.assert_array_equal(samples, model.sample(7, seed=(1, 2)))

    if model.has_density:
        log_p = model.log_prob(dataset.x_test[:9])
        assert log_p.dtype == tf.float32 and tuple(log_p.shape) == (9,)
        assert np.isfinite(log_p).all()
    else:
        with pytest.raises(NoDensityError, match=type(model).__name__):
            model.log_prob(dataset.x_test[:9])


def test_config_round_trip(name):
    model, _ = make_tiny(name)
    config = model.get_config()
    clone = type(model).from_config(json.loads(json.dumps(config, default=list)))
    assert json.dumps(clone.get_config(), default=list) == json.dumps(config, default=list)


def test_save_load(name, tmp_path):
    model, dataset = make_tiny(name)
    model.fit(dataset.x_train, epochs=1, batch_size=32, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert json.dumps(loaded.get_config(), default=list) == json.dumps(
        model.get_config(), default=list
    )
    expected, got = _endpoint_values(model, dataset), _endpoint_values(loaded, dataset)
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-5, err_msg=key)
    # training goes on after loading
    loaded.fit(dataset.x_train, epochs=1, batch_size=32, verbose=0)


_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    results = {}
    for name, job in json.loads(sys.argv[1]).items():
        loaded = tf.saved_model.load(job["path"])
        inputs, out = np.load(job["inputs"]), {}
        for key in job["endpoints"]:
            args = [tf.constant(inputs[f"{key}:{i}"]) for i in range(int(inputs[f"{key}:n"]))]
            result = getattr(loaded, key)(*args)
            flat = result if isinstance(result, dict) else {"": result}
            for sub, value in flat.items():
                out[f"{key}/{sub}"] = np.asarray(value)
        np.savez(job["out"], **out)
        results[name] = json.loads(loaded.metadata().numpy())
    results["imported"] = [m for m in ("tfdgm", "tensorflow_probability") if m in sys.modules]
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="session")  # session: a worker interleaving modules keeps it
def exported(tmp_path_factory):
    """Export every model once, then load them all in ONE fresh process without tfdgm."""
    jobs, live = {}, {}
    for name in MODEL_NAMES:
        folder = tmp_path_factory.mktemp(f"export-{name}")
        try:
            model, dataset = make_tiny(name)
            model.fit(dataset.x_train, epochs=1, batch_size=32, verbose=0)
            model.export(str(folder / "export"))
        except Exception as error:  # reported by the model's own test
            live[name] = error
            continue
        endpoints = model.export_endpoints()
        inputs = {}
        for key, (_, signature) in endpoints.items():
            values = endpoint_inputs(signature, dataset)
            inputs[f"{key}:n"] = np.array(len(values))
            inputs.update({f"{key}:{i}": v for i, v in enumerate(values)})
        np.savez(folder / "inputs.npz", **inputs)
        jobs[name] = {
            "path": str(folder / "export"),
            "inputs": str(folder / "inputs.npz"),
            "endpoints": list(endpoints),
            "out": str(folder / "out.npz"),
        }
        live[name] = (model, _endpoint_values(model, dataset))
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, json.dumps(jobs)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return live, jobs, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.xdist_group("export")  # one worker exports all models for one loading process
def test_export_loads_without_tfdgm(name, exported):
    live, jobs, results = exported
    if isinstance(live[name], Exception):
        raise live[name]
    model, expected = live[name]
    assert results["imported"] == []  # the loading process never imported tfdgm or TFP
    endpoints = jobs[name]["endpoints"]
    assert "sample" in endpoints
    assert ("log_prob" in endpoints) == model.has_density
    assert results[name]["class"] == type(model).__name__
    assert tuple(results[name]["event_shape"]) == model.event_shape
    got = np.load(jobs[name]["out"])
    assert set(got.files) == set(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-4, err_msg=key)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(name, policy):
    keras.mixed_precision.set_global_policy(policy)
    model, dataset = make_tiny(name)
    history = model.fit(dataset.x_train, epochs=2, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    if policy == "mixed_float16":
        optimizers = [v for v in vars(model).values() if isinstance(v, keras.optimizers.Optimizer)]
        assert optimizers and all(
            isinstance(o, keras.mixed_precision.LossScaleOptimizer) for o in optimizers
        )
    assert model.sample(3, seed=(1, 2)).dtype == tf.float32
    if model.has_density:
        log_p = model.log_prob(dataset.x_test[:4])
        assert log_p.dtype == tf.float32 and np.isfinite(log_p).all()


def test_jit_compile(name):
    model, dataset = make_tiny(name)
    model.compile_default(learning_rate=1e-3, jit_compile=True)
    history = model.fit(dataset.x_train, epochs=2, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_mirrored_strategy(name):
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("two logical CPUs were not configured before TensorFlow started")
    # ReductionToOneDevice: several strategies in one process would otherwise reuse the
    # collective instance keys of the previous one and clash on shapes
    strategy = tf.distribute.MirroredStrategy(
        [d.name for d in devices[:2]], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )
    with strategy.scope():
        model, dataset = make_tiny(name)
    history = model.fit(dataset.x_train, epochs=2, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_bad_input_raises_before_training(name):
    model, dataset = make_tiny(name)
    before = [np.array(v) for v in model.trainable_variables]
    x = dataset.x_train[:8].copy()
    bad = {"nan": x.copy(), "shape": x[:, :-1], "rank": x[..., None]}
    bad["nan"][0, 0] = np.nan
    if model.support == "binary":
        bad["support"] = np.full_like(x, 0.5)
    elif model.support == "categorical":
        bad["support"] = np.full_like(x, float(model.num_categories))
    for value in bad.values():
        with pytest.raises(ValueError, match=type(model).__name__):
            model.fit(value, epochs=1, batch_size=4, verbose=0)
        if model.has_density:
            with pytest.raises(ValueError):
                model.log_prob(value)
    for old, new in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(old, np.array(new))


def test_registry_entry(name):
    entry = registry.get(name)
    assert entry.datasets and entry.defaults.get("epochs") and entry.description
    with pytest.raises(ValueError, match="choose one of"):
        registry.get(name + "-no-such-model")

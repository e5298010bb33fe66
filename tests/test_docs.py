"""The documentation site builds in strict mode, and every picture it shows exists."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).parent.parent


def test_mkdocs_builds_strict(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").exists()


def test_every_docs_page_is_in_the_nav_and_images_exist():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert page.name in nav, f"{page.name} is not in mkdocs.yml's nav"
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / image).exists(), f"{page.name} shows missing {image}"


def test_the_adding_a_model_example_runs(tmp_path):
    """docs/contract.md's model file, executed as written: it registers, fits by summed
    statistics under a two-replica MirroredStrategy to NumPy's maximum-likelihood
    Gaussian, reports its density kind, and survives save/load."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tfdgm import registry

    text = (ROOT / "docs" / "contract.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    try:
        exec(compile(code, "docs/contract.md", "exec"), namespace)  # noqa: S102
        cls = namespace["GaussianExample"]
        entry = registry.get("gaussian-example")
        assert entry.cls is cls and entry.variant("jittery")[1]["jitter"] == 1e-2
        rng = np.random.default_rng(0)
        x = rng.standard_normal((300, 3)).astype("float32") @ np.array(
            [[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.7]], "float32"
        ) + np.float32(2.0)
        devices = tf.config.list_logical_devices("CPU")[:2]
        strategy = tf.distribute.MirroredStrategy(
            [d.name for d in devices], cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
        with strategy.scope():
            model = cls(event_shape=(3,), jitter=0.0)
            model.compile_default()
        history = model.fit(x, epochs=2, batch_size=64, verbose=0)
        assert model.density == "exact" and np.isfinite(history.history["loss"]).all()
        np.testing.assert_allclose(model.mean.numpy(), x.mean(0), atol=1e-5)
        cov = np.asarray(model.scale_tril) @ np.asarray(model.scale_tril).T
        np.testing.assert_allclose(cov, np.cov(x.T, bias=True), atol=1e-4)
        path = str(tmp_path / "gaussian.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        np.testing.assert_allclose(loaded.log_prob(x[:5]), model.log_prob(x[:5]), rtol=1e-6)
    finally:
        registry.MODELS.pop("gaussian-example", None)

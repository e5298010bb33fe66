"""What a run measures once on the test split: the held-out log-likelihood of every model
with a density (:func:`held_out_log_prob`, :func:`nll_metrics`) the class coherence of
conditional digit models (:func:`class_coherence`) and the cross-modal figures of a
multimodal VAE of digits and labels (:func:`multimodal_coherence`, its
``summary_metrics``). :mod:`tfdgm.runs` calls the first three and re-exports them; the
log-likelihood's formulas are in its docstring.
"""

from __future__ import annotations

import numpy as np

from tfdgm import data

#: Stateless seed of the run's one test log-likelihood (deterministic for fixed weights).
NLL_SEED = (0, 0)
#: Test examples per ``log_prob`` call when scoring the test split.
NLL_BATCH = 500


def held_out_log_prob(
    model, x, seed=NLL_SEED, batch_size: int = NLL_BATCH, labels=None
) -> np.ndarray:
    """log p(x_n) (log p(x_n | y_n) given ``labels``) for every row of ``x`` (an array or
    a dict of modalities), float64 ``[N]``: ``model.log_prob`` on batches of
    ``batch_size``, each with the same stateless ``seed`` (so estimates such as IWAE or
    AIS are a deterministic function of the weights)."""
    parts = []
    for i in range(0, data.num_examples(x), batch_size):
        rows = slice(i, i + batch_size)
        batch = {k: v[rows] for k, v in x.items()} if isinstance(x, dict) else x[rows]
        given = {} if labels is None else {"labels": np.asarray(labels)[rows]}
        parts.append(np.asarray(model.log_prob(batch, seed=seed, **given), np.float64))
    return np.concatenate(parts)


def class_coherence(model, dataset, num_samples: int = 1000, seed=(0, 3)) -> dict:
    """``{"label_coherence": fraction}``: of ``num_samples`` samples of a conditional
    model drawn for equal numbers of each class, the fraction the shipped digits
    classifier (:func:`tfdgm.metrics.digits_classifier`) labels as the asked class; {}
    where there is no classifier for the data."""
    from tfdgm import metrics

    shape = tuple(dataset.image_shape or ())[:2]
    conditional = getattr(model, "accepts_labels", False)
    if not conditional or shape not in ((8, 8), (28, 28)) or dataset.num_classes != 10:
        return {}
    if dataset.support == "categorical":  # the classifier reads images in [0, 1]
        return {}
    asked = np.arange(num_samples) % 10
    samples = np.asarray(model.sample(num_samples, seed=seed, labels=asked))
    predicted = metrics.digits_classifier(shape).predict(samples)
    return {"label_coherence": float(np.mean(predicted == asked))}


def nll_metrics(log_p, event_size: int, num_levels: int | None = None) -> dict:
    """``{"test_nll_nats", "test_bits_per_dim"}`` from per-example log-densities.

    NLL = -mean(log p) nats; bits/dim = (NLL + D log K) / (D log 2), K = ``num_levels``
    for dequantized data (the discrete data's figure), else K = 1.

    >>> nll_metrics([0.0], event_size=3, num_levels=8)["test_bits_per_dim"]
    3.0
    """
    from tfdgm.estimators import bits_per_dim

    return {
        "test_nll_nats": float(-np.mean(log_p)),
        "test_bits_per_dim": float(np.mean(bits_per_dim(log_p, event_size, num_levels))),
    }


def multimodal_coherence(model, dataset, num_samples: int = 1000, seed=(0, 3)) -> dict:
    """Figures of a multimodal model of 8x8 digits with ``image`` and ``label`` modalities,
    judged by the shipped digits classifier (:func:`tfdgm.metrics.digits_classifier`):

    - ``image_to_label_accuracy``: the label generated from each test image (the most
      probable label of p(label | z), z ~ q(z | image)) equals the true one;
    - ``label_to_image_coherence``: of ``num_samples`` images generated from labels
      (equal numbers of each), the fraction the classifier labels as the asked digit;
    - ``joint_coherence``: of ``num_samples`` joint samples (z ~ p(z)), the fraction
      whose image the classifier labels as the sampled label.
    """
    import tensorflow as tf

    from tfdgm import metrics

    classifier = metrics.digits_classifier((8, 8))
    k = model.modalities["label"].num_categories
    image = dataset.x_test["image"]
    z_mean = model.encode({"image": image}).mean()
    probs = model.decode(z_mean, "label").distribution.probs_parameter()
    predicted = np.asarray(tf.argmax(probs, -1))
    asked = np.arange(num_samples) % k
    images = model.generate({"label": asked.astype("float32")}, "image", seed=seed)
    joint = model.sample(num_samples, seed=seed)
    return {
        "image_to_label_accuracy": float(np.mean(predicted == dataset.y_test)),
        "label_to_image_coherence": float(np.mean(classifier.predict(np.asarray(images)) == asked)),
        "joint_coherence": float(
            np.mean(classifier.predict(np.asarray(joint["image"])) == np.asarray(joint["label"]))
        ),
    }

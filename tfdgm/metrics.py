"""Sample-quality metrics for models judged by their samples (GANs, MMD networks, any model).

Frechet distance (Heusel et al., 2017) between Gaussians fitted to features of real data x and
of samples y, i.e. the squared 2-Wasserstein distance between N(mu_x, S_x) and N(mu_y, S_y):

    FD = ||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x^{1/2} S_y S_x^{1/2})^{1/2})

Kernel inception distance (Binkowski et al., 2018): the unbiased estimate of the squared
maximum mean discrepancy with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3,

    MMD^2_u = 1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j)
              - 2/(mn) sum_{i,j} k(x_i, y_j).

Features: the 64 penultimate ReLU units of a small classifier shipped with the package and
picked by image shape, so the metrics work offline: for 8x8 digits
``tfdgm/assets/digits_classifier.npz`` (99.3% test accuracy on dequantized digits, 96.3% on
binarized ones), for 28x28 digits ``tfdgm/assets/mnist5k_classifier.npz`` (trained on the
MNIST-5k train split only: 97.8% on its 1,000 dequantized test images, 97.4% binarized as
x > 127, 97.0% stochastically binarized), both by ``scripts/train_digits_classifier.py``.
For other data (2-D toy sets, other images) the same metrics are computed in data space. On
the 8-Gaussians set, mode coverage and the fraction of high-quality samples (within 3
standard deviations of a mode; Srivastava et al., 2017) say whether a generator dropped
modes.

References:
    Heusel et al., GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium, NeurIPS 2017.
    Dowson & Landau, The Frechet distance between multivariate normal distributions, 1982.
    Binkowski, Sutherland, Arbel & Gretton, Demystifying MMD GANs, ICLR 2018.
    Gretton et al., A Kernel Two-Sample Test, JMLR 2012.
    Srivastava et al., VEEGAN: Reducing Mode Collapse in GANs using Implicit Variational
    Learning, NeurIPS 2017.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfdgm import data as _data

#: Weights of the shipped digits classifiers (see ``scripts/train_digits_classifier.py``):
#: 8x8 (scikit-learn digits) and 28x28 (MNIST-5k train split).
DIGITS_CLASSIFIER = Path(__file__).parent / "assets" / "digits_classifier.npz"
MNIST5K_CLASSIFIER = Path(__file__).parent / "assets" / "mnist5k_classifier.npz"
CLASSIFIERS = {(8, 8): DIGITS_CLASSIFIER, (28, 28): MNIST5K_CLASSIFIER}


# ---------------------------------------------------------------- Frechet distance
def frechet_distance_gaussian(mu1, cov1, mu2, cov2) -> float:
    """W_2^2 between N(mu1, cov1) and N(mu2, cov2) (the Frechet distance of two Gaussians).

    ||mu1 - mu2||^2 + Tr(cov1) + Tr(cov2) - 2 Tr((cov1^{1/2} cov2 cov1^{1/2})^{1/2}), computed
    in float64 with symmetric eigendecompositions (stable for singular covariances).

    >>> frechet_distance_gaussian([0.0], [[1.0]], [3.0], [[4.0]])  # (0-3)^2 + (1-2)^2
    10.0
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    cov1, cov2 = (
        np.atleast_2d(np.asarray(cov1, np.float64)),
        np.atleast_2d(np.asarray(cov2, np.float64)),
    )
    root1 = _sqrt_psd(cov1)
    middle = _sqrt_psd(root1 @ cov2 @ root1)
    value = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(middle)
    return float(max(value, 0.0))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (negative eigenvalues -> 0)."""
    matrix = 0.5 * (matrix + matrix.T)
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(x, y) -> float:
    """Frechet distance between Gaussians fitted (mean, covariance) to samples x and y ``[n, d]``.

    >>> rng = np.random.default_rng(0)
    >>> round(frechet_distance(rng.normal(size=(20000, 1)), 2 + rng.normal(size=(20000, 1))), 1)
    4.0
    """
    x, y = _as_2d(x), _as_2d(y)
    return frechet_distance_gaussian(x.mean(0), _cov(x), y.mean(0), _cov(y))


def _cov(x: np.ndarray) -> np.ndarray:
    return np.atleast_2d(np.cov(x, rowvar=False))


def _as_2d(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x.reshape(len(x), -1)


# ---------------------------------------------------------------- kernels and MMD
def polynomial_kernel(x, y, degree: int = 3, gamma: float | None = None, coef0: float = 1.0):
    """k(a, b) = (gamma a.b + coef0)^degree for all pairs, ``[n, m]``; gamma = 1/d by default."""
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    gamma = 1.0 / int(x.shape[-1]) if gamma is None else gamma
    return (gamma * tf.matmul(x, y, transpose_b=True) + coef0) ** degree


def gaussian_kernel(x, y, bandwidths: Sequence[float] = (1.0,)):
    """Mixture of Gaussian kernels sum_s exp(-||a - b||^2 / (2 s^2)) for all pairs, ``[n, m]``.

    >>> float(gaussian_kernel([[0.0]], [[0.0]], bandwidths=(1.0, 2.0))[0, 0])
    2.0
    """
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    y = tf.cast(y, x.dtype)
    sq = (
        tf.reduce_sum(x * x, -1)[:, None]
        + tf.reduce_sum(y * y, -1)[None, :]
        - 2.0 * tf.matmul(x, y, transpose_b=True)
    )
    sq = tf.maximum(sq, 0.0)  # rounding can make tiny distances negative
    return tf.add_n([tf.exp(-sq / (2.0 * float(s) ** 2)) for s in bandwidths])


def mmd2(x, y, kernel: Callable = gaussian_kernel, unbiased: bool = True):
    """Squared maximum mean discrepancy between samples x ``[m, d]`` and y ``[n, d]``.

    Unbiased: drops the diagonals k(x_i, x_i), k(y_j, y_j) of the within-sample means
    (Gretton et al., 2012, Lemma 6), so its expectation is 0 when x and y come from one
    distribution; it can then be slightly negative. Biased (V-statistic): keeps them (>= 0).
    Differentiable (TensorFlow), so MMD networks train on it; returns a scalar tensor.

    >>> x = np.zeros((4, 2)); float(mmd2(x, x, unbiased=False))
    0.0
    """
    x = tf.convert_to_tensor(x)
    y = tf.cast(tf.convert_to_tensor(y), x.dtype)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    m = tf.cast(tf.shape(x)[0], x.dtype)
    n = tf.cast(tf.shape(y)[0], x.dtype)
    if unbiased:
        xx = (tf.reduce_sum(kxx) - tf.linalg.trace(kxx)) / (m * (m - 1.0))
        yy = (tf.reduce_sum(kyy) - tf.linalg.trace(kyy)) / (n * (n - 1.0))
    else:
        xx, yy = tf.reduce_mean(kxx), tf.reduce_mean(kyy)
    return xx + yy - 2.0 * tf.reduce_mean(kxy)


def kernel_inception_distance(
    x, y, num_subsets: int = 10, subset_size: int = 1000, seed: int = 0
) -> float:
    """KID: unbiased MMD^2 with the kernel (a.b/d + 1)^3, averaged over random subsets.

    Each of ``num_subsets`` draws takes ``min(subset_size, m, n)`` points from each set without
    replacement (one draw when both sets fit in a subset). Close to 0 for two samples of one
    distribution, whatever their size (unlike FD, which is biased upwards for small samples).
    """
    x, y = _as_2d(x), _as_2d(y)
    size = min(int(subset_size), len(x), len(y))
    if size < 2:
        raise ValueError("KID needs at least 2 points in each set")
    rng = np.random.default_rng(seed)
    draws = 1 if size == len(x) == len(y) else int(num_subsets)
    values = []
    for _ in range(draws):
        xs = x if size == len(x) else x[rng.choice(len(x), size, replace=False)]
        ys = y if size == len(y) else y[rng.choice(len(y), size, replace=False)]
        values.append(float(mmd2(xs, ys, kernel=polynomial_kernel)))
    return float(np.mean(values))


# ---------------------------------------------------------------- 8 Gaussians
def _mode_assignment(samples, centers, std: float):
    samples = _as_2d(samples)
    centers = _data.toy_mode_centers("8gaussians") if centers is None else np.asarray(centers)
    distances = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)  # (n, K)
    nearest = distances.argmin(1)
    high_quality = distances.min(1) < 3.0 * std
    counts = np.bincount(nearest[high_quality], minlength=len(centers))
    return counts, high_quality


def high_quality_fraction(samples, centers=None, std: float = 0.2) -> float:
    """Fraction of samples within 3 standard deviations of their nearest mode centre.

    ``centers`` defaults to the 8-Gaussians centres (radius 2, std 0.2).

    >>> high_quality_fraction([[2.0, 0.0], [0.0, 0.0]])
    0.5
    """
    return float(_mode_assignment(samples, centers, std)[1].mean())


def mode_coverage(samples, centers=None, std: float = 0.2, min_fraction: float = 0.02) -> int:
    """Number of modes that received at least ``min_fraction`` of the samples as high-quality
    samples (within 3 std of that mode, their nearest). With 8 equal modes each would get
    12.5%; the 2% threshold ignores a handful of stray points between modes.

    >>> centers = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> mode_coverage(np.zeros((10, 2)), centers)
    1
    """
    counts, _ = _mode_assignment(samples, centers, std)
    threshold = max(1.0, min_fraction * len(_as_2d(samples)))
    return int(np.sum(counts >= threshold))


# ---------------------------------------------------------------- digits features
class DigitsClassifier:
    """A shipped digits MLP (ReLU hidden layers, 10 logits), evaluated in NumPy.

    8x8: 64 -> 128 -> 64 -> 10; 28x28: 784 -> 128 -> 64 -> 10. ``features`` are the 64
    penultimate ReLU units (the space of FD and KID on digits); ``test_accuracy`` holds the
    accuracies the training script measured with these stored weights, per input form.
    """

    def __init__(self, path: str | Path = DIGITS_CLASSIFIER):
        with np.load(path) as weights:
            depth = sum(key.startswith("kernel_") for key in weights.files)
            self.kernels = [weights[f"kernel_{i}"].astype(np.float64) for i in range(depth)]
            self.biases = [weights[f"bias_{i}"].astype(np.float64) for i in range(depth)]
            self.test_accuracy = {
                key.removeprefix("test_accuracy_"): float(weights[key])
                for key in weights.files
                if key.startswith("test_accuracy_")
            }
        self.input_size = self.kernels[0].shape[0]

    def features(self, x) -> np.ndarray:
        """Penultimate ReLU activations ``[n, 64]`` of flat or 2-D images in [0, 1]."""
        h = np.asarray(x, np.float64).reshape(len(x), self.input_size)
        for kernel, bias in zip(self.kernels[:-1], self.biases[:-1]):
            h = np.maximum(h @ kernel + bias, 0.0)
        return h

    def logits(self, x) -> np.ndarray:
        return self.features(x) @ self.kernels[-1] + self.biases[-1]

    def predict(self, x) -> np.ndarray:
        """Most probable digit 0..9 of each image."""
        return self.logits(x).argmax(-1)


@functools.lru_cache(maxsize=2)
def digits_classifier(image_shape: tuple = (8, 8)) -> DigitsClassifier:
    """The shipped classifier for digits of ``image_shape`` (8, 8) or (28, 28), loaded once."""
    image_shape = tuple(image_shape[:2])
    if image_shape not in CLASSIFIERS:
        raise ValueError(
            f"no shipped classifier for {image_shape} images; have {list(CLASSIFIERS)}"
        )
    return DigitsClassifier(CLASSIFIERS[image_shape])


def feature_map(dataset) -> tuple[str, Callable]:
    """(name, features) of the space FD/KID use for ``dataset``: a shipped digits classifier's
    penultimate layer for 8x8 or 28x28 digits (picked by image shape), the data otherwise."""
    image_shape = getattr(dataset, "image_shape", None)
    if image_shape is not None and tuple(image_shape[:2]) == (8, 8):
        return "digits_classifier", digits_classifier((8, 8)).features
    if image_shape is not None and tuple(image_shape[:2]) == (28, 28):
        return "mnist5k_classifier", digits_classifier((28, 28)).features
    return "data", _as_2d


# ---------------------------------------------------------------- one call for reports
def sample_quality(
    model_or_samples, dataset, num_samples: int | None = None, seed=(0, 0), reference=False
) -> dict:
    """FD and KID of samples against ``dataset.x_test`` (+ mode statistics on 8 Gaussians).

    Args:
        model_or_samples: a model with ``sample(n, seed=...)`` or an array of samples.
        dataset: a :class:`tfdgm.data.Dataset` (its test split is the reference).
        num_samples: samples to draw from a model; default ``len(dataset.x_test)``.
        seed: sampling seed (int32[2]).
        reference: also return ``"fd_reference"`` and ``"kid_reference"``: the same metrics
            for as many training points as samples (the value of a model that memorized
            the training set: what "good" means at this sample size).

    Returns:
        ``{"fd": float, "kid": float}``, plus ``"modes_covered"`` (of 8) and
        ``"high_quality_fraction"`` on "8gaussians".
    """
    real = np.asarray(dataset.x_test)
    if hasattr(model_or_samples, "sample"):
        n = int(num_samples or len(real))
        samples = np.asarray(model_or_samples.sample(n, seed=seed))
    else:
        samples = np.asarray(model_or_samples)
    _, features = feature_map(dataset)
    samples = _as_2d(samples)
    if not np.all(np.isfinite(samples)):
        out = {"fd": float("nan"), "kid": float("nan")}
    else:
        fx, fy = features(real), features(samples)
        out = {"fd": frechet_distance(fx, fy), "kid": kernel_inception_distance(fx, fy)}
    if reference:
        train = _as_2d(dataset.x_train)
        train = train[np.random.default_rng(0).permutation(len(train))[: len(samples)]]
        fx, ft = features(real), features(train)
        out["fd_reference"] = frechet_distance(fx, ft)
        out["kid_reference"] = kernel_inception_distance(fx, ft)
    if getattr(dataset, "name", None) == "8gaussians":
        out["modes_covered"] = mode_coverage(samples)
        out["high_quality_fraction"] = high_quality_fraction(samples)
    return out

"""Mixtures by EM and the Bayesian GMM by CAVI/SVI: tfdgm against scikit-learn, in one process.

Quality, on tfdgm's own digits split (1,497 train / 300 test images):
- digits-continuous (dequantized, [0, 1)^64): test log-density per image of a 10-component
  full-covariance Gaussian mixture (reg_covar 1e-3) by EM, scikit-learn's
  ``GaussianMixture`` beside tfdgm's; the Bayesian mixture (Dirichlet weights, full,
  reg_covar 1e-3) by CAVI and by SVI beside scikit-learn's ``BayesianGaussianMixture``.
  scikit-learn's ``score`` of a Bayesian mixture is mean_n logsumexp_k rho_nk (the E-step's
  expected log weights, not a density): tfdgm reports that number too, and its posterior
  predictive density (a mixture of Student-t's);
- binarized digits: test NLL (nats) of a mixture of 100 Bernoullis by EM, of the
  factorized model, and of a Bayesian network (each pixel's parents: the pixels above and
  to its left); beside them the issue's references recomputed here: a NumPy Bernoulli
  mixture by EM, a logistic fully-visible sigmoid belief net (scikit-learn), the NumPy
  factorized model.

Speed: seconds per EM / CAVI iteration on digits-continuous, tfdgm's ``fit`` (one epoch =
one iteration, one batch of all 1,497 images; the model compiled and its step traced once,
before timing) against scikit-learn's ``fit`` from the same fixed start (``--iterations``
iterations, ``tol=0``), best of ``--repeats``; the ratio is tfdgm's time over
scikit-learn's. ``--threads N`` limits TensorFlow and the BLAS under scikit-learn to N
threads each. A second row times the same iterations outside ``fit`` (the traced
``batch_statistics`` and the eager ``apply_statistics``): the difference is Keras's cost
of an epoch.

``--svi``: 100,000 points from a 5-component 2-D mixture: the ELBO per point of SVI
(batches of 256, ``--svi-epochs`` epochs) against CAVI's (``--cavi-sweeps`` sweeps).

    python benchmarks/bench_mixtures.py [--epochs 100] [--repeats 3] [--svi] [--threads N]
                                        [--smoothing 0.1 1.0] [--figures] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.cluster import KMeans, kmeans_plusplus  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import BayesianGaussianMixture as SkBGMM  # noqa: E402
from sklearn.mixture import GaussianMixture as SkGMM  # noqa: E402

from tfdgm import data  # noqa: E402
from tfdgm.models.bayesian_network import BayesianNetwork  # noqa: E402
from tfdgm.models.histogram import FactorizedCategorical  # noqa: E402
from tfdgm.models.mixtures import BernoulliMixture, GaussianMixture  # noqa: E402
from tfdgm.models.variational_mixture import BayesianGaussianMixture  # noqa: E402

warnings.filterwarnings("ignore", category=ConvergenceWarning)
K, REG = 10, 1e-3
FIGURES = {}  # what --figures draws, filled by quality()


def fit(model, x, epochs, batch_size=None):
    model.compile_default()
    return model.fit(x, epochs=epochs, batch_size=batch_size or len(x), verbose=0)


def mean_log_density(model, x) -> float:
    return float(np.mean(np.asarray(model.log_prob(x), np.float64)))


def bayesian_rows(label, model, cont) -> list[tuple[str, str, float, str]]:
    """scikit-learn's score (mean logsumexp_k rho_nk), the predictive log-density, ELBO / N."""
    rho = np.logaddexp.reduce(np.asarray(model.log_joint(cont.x_test), np.float64), axis=1)
    alpha = model.get_parameters()["weight_concentration"]
    used = int((alpha / alpha.sum() > 0.01).sum())
    return [
        ("digits-continuous", f"{label}: score", rho.mean(), ""),
        (
            "digits-continuous",
            f"{label}: predictive log p",
            mean_log_density(model, cont.x_test),
            "",
        ),
        (
            "digits-continuous",
            f"{label}: train ELBO / N ({used} components > 1%)",
            model.elbo(cont.x_train) / len(cont.x_train),
            "",
        ),
    ]


def quality(args) -> list[tuple[str, str, float, str]]:
    cont = data.load("digits-continuous")
    xtr, xte = cont.x_train.astype(np.float64), cont.x_test.astype(np.float64)
    # scikit-learn's start: one k-means run on all the data (its init_params="kmeans")
    labels = KMeans(n_clusters=K, n_init=1, random_state=args.seed).fit(xtr).labels_
    start = np.eye(K)[labels]
    sk = SkGMM(K, reg_covar=REG, random_state=args.seed).fit(xtr)
    rows = [("digits-continuous", "scikit-learn GaussianMixture", sk.score(xte), "62.86")]
    same = GaussianMixture((64,), K, reg_covar=REG)
    same.initialize(cont.x_train, responsibilities=start)
    fit(same, cont.x_train, sk.n_iter_)
    label = f"tfdgm GaussianMixture, scikit-learn's start and {sk.n_iter_} iterations"
    rows.append(("digits-continuous", label, mean_log_density(same, cont.x_test), ""))
    own = GaussianMixture((64,), K, reg_covar=REG, init="kmeans", seed=args.seed)
    fit(own, cont.x_train, args.epochs)
    label = f"tfdgm GaussianMixture, own k-means start, {args.epochs} iterations"
    rows.append(("digits-continuous", label, mean_log_density(own, cont.x_test), ""))
    skb = SkBGMM(
        n_components=K,
        weight_concentration_prior_type="dirichlet_distribution",
        reg_covar=REG,
        max_iter=100,
        random_state=args.seed,
    ).fit(xtr)
    rows.append(
        ("digits-continuous", "scikit-learn BayesianGaussianMixture score", skb.score(xte), "56.03")
    )
    same = BayesianGaussianMixture((64,), K, reg_covar=REG)
    same.initialize(cont.x_train, responsibilities=start)
    fit(same, cont.x_train, skb.n_iter_)
    rows += bayesian_rows(f"tfdgm CAVI, scikit-learn's start and {skb.n_iter_} sweeps", same, cont)
    for inference, epochs, batch in (("cavi", args.epochs, None), ("svi", args.epochs // 4, 64)):
        model = BayesianGaussianMixture(
            (64,),
            K,
            reg_covar=REG,
            inference=inference,
            num_examples=len(xtr),
            init="kmeans",
            seed=args.seed,
        )
        history = fit(model, cont.x_train, max(epochs, 1), batch)
        FIGURES[inference] = (history.history["elbo"], model.elbo(cont.x_train) / len(xtr))
        what = (
            f"{epochs} sweeps" if inference == "cavi" else f"{epochs} epochs of batches of {batch}"
        )
        rows += bayesian_rows(f"tfdgm {inference.upper()}, own k-means start, {what}", model, cont)
    binary = data.load("digits")
    for smoothing in args.smoothing:
        bmm = BernoulliMixture((64,), 100, smoothing=smoothing, seed=args.seed)
        fit(bmm, binary.x_train, args.epochs)
        FIGURES.setdefault("bernoulli", (smoothing, bmm))
        rows.append(
            (
                "digits",
                f"tfdgm BernoulliMixture(100, smoothing={smoothing}) NLL",
                -mean_log_density(bmm, binary.x_test),
                "18.12",
            )
        )
    factorized = FactorizedCategorical((64,), 2)
    fit(factorized, binary.x_train, 1)
    rows.append(
        (
            "digits",
            "tfdgm FactorizedCategorical NLL",
            -mean_log_density(factorized, binary.x_test),
            "24.51",
        )
    )
    rows += references(args, binary)
    net = BayesianNetwork.for_dataset(binary, structure="grid", pseudo_count=1.0)
    fit(net, binary.x_train, 1)
    rows.append(
        (
            "digits",
            "tfdgm BayesianNetwork (grid DAG) NLL",
            -mean_log_density(net, binary.x_test),
            "",
        )
    )
    return rows


def numpy_bernoulli_mixture(x, x_test, k, alpha, iterations, seed) -> float:
    """Test NLL of a mixture of k Bernoullis by EM in NumPy (float64): means seeded by
    scikit-learn's k-means++ on the training images, then ``iterations`` EM steps with the
    MAP update mu_kj = (sum_n r_nk x_nj + alpha) / (N_k + 2 alpha) (tfdgm's ``smoothing``)."""
    means, _ = kmeans_plusplus(x, k, random_state=seed)
    means = (means + alpha) / (1 + 2 * alpha) if alpha > 0 else np.clip(means, 1e-3, 1 - 1e-3)
    weights = np.full(k, 1.0 / k)

    def log_joint(data):  # an emptied component has weight 0: log 0 = -inf is right
        with np.errstate(divide="ignore"):
            log_weights = np.log(weights)
        return log_weights + data @ np.log(means).T + (1 - data) @ np.log1p(-means).T

    for _ in range(iterations):
        joint = log_joint(x)
        r = np.exp(joint - np.logaddexp.reduce(joint, axis=1, keepdims=True))
        counts = r.sum(0)
        weights = counts / len(x)
        means = (r.T @ x + alpha) / (counts[:, None] + 2 * alpha)
        means = np.clip(means, 1e-12, 1 - 1e-12)
    return -float(np.logaddexp.reduce(log_joint(x_test), axis=1).mean())


def logistic_fvsbn(x, x_test) -> float:
    """Test NLL of a fully-visible sigmoid belief net, p(x) = prod_i p(x_i | x_<i) with one
    scikit-learn ``LogisticRegression`` (default L2, C = 1) per pixel on the pixels before
    it; the first pixel, and a pixel constant in the training set, by its Laplace-smoothed
    frequency."""
    from sklearn.linear_model import LogisticRegression

    total = np.zeros(len(x_test))
    for i in range(x.shape[1]):
        target = x[:, i]
        if i == 0 or target.min() == target.max():
            p1 = np.full(len(x_test), (target.sum() + 1) / (len(x) + 2))
        else:
            p1 = LogisticRegression(max_iter=1000).fit(x[:, :i], target)
            p1 = p1.predict_proba(x_test[:, :i])[:, 1]
        total -= np.where(x_test[:, i] > 0.5, np.log(p1), np.log1p(-p1))
    return float(total.mean())


def references(args, binary) -> list[tuple[str, str, float, str]]:
    """The issue's binarized-digits references, recomputed with scikit-learn and NumPy."""
    x, x_test = binary.x_train.astype(np.float64), binary.x_test.astype(np.float64)
    rows = []
    for smoothing in args.smoothing:
        value = numpy_bernoulli_mixture(x, x_test, 100, smoothing, args.epochs, args.seed)
        rows.append(
            ("digits", f"NumPy Bernoulli mixture (100, alpha={smoothing}) NLL", value, "18.12")
        )
    rows.append(("digits", "scikit-learn logistic FVSBN NLL", logistic_fvsbn(x, x_test), "18.11"))
    p1 = (x.sum(0) + 1) / (len(x) + 2)  # Laplace-smoothed pixel frequencies
    factorized = -(x_test @ np.log(p1) + (1 - x_test) @ np.log1p(-p1)).mean()
    rows.append(("digits", "NumPy factorized (Laplace) NLL", float(factorized), "24.51"))
    return rows


def write_figures(folder="docs/img"):
    """The CAVI ELBO per sweep (SVI's end beside it) and the Bernoulli mixture's means."""
    import matplotlib.pyplot as plt

    from tfdgm import plotting

    curve, _ = FIGURES["cavi"]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(1, len(curve) + 1), curve, label="CAVI: ELBO / N of each sweep")
    ax.axhline(FIGURES["svi"][1], color="C1", ls="--", label="SVI: ELBO / N at the end")
    ax.set_xlabel("sweep (epoch)")
    ax.set_ylabel("nats per image")
    ax.set_ylim(min(curve[1:] + [FIGURES["svi"][1]]) - 2, max(curve + [FIGURES["svi"][1]]) + 2)
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{folder}/mixtures_elbo.png", dpi=100)
    smoothing, bmm = FIGURES["bernoulli"]
    order = np.argsort(-np.asarray(bmm.mixture_logits))[:40]
    title = f"BernoulliMixture(100, smoothing={smoothing}): the 40 heaviest means"
    grid = plotting.image_grid(bmm.get_parameters()["means"][order], (8, 8), ncols=10, title=title)
    grid.savefig(f"{folder}/mixtures_bernoulli_means.png", dpi=100)


def best(run, repeats) -> float:
    run()  # warm-up: traces the tfdgm step, loads BLAS
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def speed(args) -> list[tuple[str, float, float]]:
    x = data.load("digits-continuous").x_train
    x64 = x.astype(np.float64)
    rng = np.random.default_rng(args.seed)
    means = x64[rng.choice(len(x), K, replace=False)]
    weights = np.full(K, 1.0 / K)
    precisions = np.stack([np.linalg.inv(np.cov(x64.T) + REG * np.eye(64))] * K)
    n = args.iterations
    sk = lambda: SkGMM(
        K,
        reg_covar=REG,
        max_iter=n,
        tol=0,
        weights_init=weights,
        means_init=means,
        precisions_init=precisions,
    ).fit(x64)

    gmm = GaussianMixture((64,), K, reg_covar=REG)
    gmm.set_parameters(weights=weights, means=means, covariances=np.linalg.inv(precisions))
    start = rng.dirichlet(np.ones(K), size=len(x))

    class FromStart(SkBGMM):
        def _initialize_parameters(self, X, random_state, xp=None):
            self._initialize(X, start)

    skb = lambda: FromStart(
        n_components=K,
        weight_concentration_prior_type="dirichlet_distribution",
        reg_covar=REG,
        max_iter=n,
        tol=0,
    ).fit(x64)
    bgmm = BayesianGaussianMixture((64,), K, reg_covar=REG)
    bgmm.initialize(x, responsibilities=start)
    rows = []
    for name, model, reference in (
        ("EM, GaussianMixture full K=10", gmm, sk),
        ("CAVI, BayesianGaussianMixture full K=10", bgmm, skb),
    ):
        model.compile_default()  # once: every timed fit reuses the traced step
        theirs = best(reference, args.repeats) / n
        fit_time = best(
            lambda m=model: m.fit(x, epochs=n, batch_size=len(x), verbose=0), args.repeats
        )
        rows.append((f"{name}, tfdgm fit", fit_time / n, theirs))
        step = tf.function(lambda t, m=model: m.batch_statistics(t)[0])
        tensor = tf.constant(x)

        def steps(m=model, step=step, tensor=tensor):
            for _ in range(n):
                m.apply_statistics(step(tensor))

        rows.append(
            (
                f"{name}, tfdgm E-step (traced) + M-step without fit",
                best(steps, args.repeats) / n,
                theirs,
            )
        )
    return rows


def svi(args) -> list[tuple[str, float]]:
    rng = np.random.default_rng(args.seed)
    centers = rng.normal(0, 4, (5, 2))
    x = (centers[rng.choice(5, size=100_000)] + rng.normal(0, 1, (100_000, 2))).astype(np.float32)
    cavi = BayesianGaussianMixture((2,), 5, seed=args.seed)
    start = time.perf_counter()
    fit(cavi, x, args.cavi_sweeps, 10_000)
    cavi_time = time.perf_counter() - start
    model = BayesianGaussianMixture((2,), 5, inference="svi", num_examples=len(x), seed=args.seed)
    start = time.perf_counter()
    fit(model, x, args.svi_epochs, 256)
    svi_time = time.perf_counter() - start
    optimum, reached = cavi.elbo(x) / len(x), model.elbo(x) / len(x)
    return [
        (f"CAVI ELBO / N after {args.cavi_sweeps} sweeps ({cavi_time:.0f} s)", optimum),
        (
            f"SVI ELBO / N after {args.svi_epochs} epochs of batches of 256 ({svi_time:.0f} s)",
            reached,
        ),
        (
            "SVI below CAVI, % of |CAVI ELBO| (negative: above)",
            100 * (optimum - reached) / abs(optimum),
        ),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=int, default=100, help="EM / CAVI iterations for the quality table"
    )
    parser.add_argument("--iterations", type=int, default=20, help="iterations per timed fit")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--smoothing", type=float, nargs="+", default=[1.0], help="BernoulliMixture alphas"
    )
    parser.add_argument("--svi", action="store_true", help="add the 100,000-point SVI check")
    parser.add_argument("--svi-epochs", type=int, default=3)
    parser.add_argument("--cavi-sweeps", type=int, default=50)
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="threads for TF and BLAS")
    parser.add_argument("--figures", action="store_true", help="write docs/img/mixtures_*.png")
    args = parser.parse_args()
    if args.threads:
        import threadpoolctl

        threadpoolctl.threadpool_limits(args.threads)
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)  # fit's shuffling (SVI's batches)
    if not args.no_quality:
        print("| data | model | test figure | reference |\n|---|---|---|---|")
        for dataset, name, value, reference in quality(args):
            print(f"| {dataset} | {name} | {value:.2f} | {reference} |")
        if args.figures:
            write_figures()
    if not args.no_speed:
        print("\n| iteration | tfdgm s | scikit-learn s | ratio |\n|---|---|---|---|")
        for name, ours, theirs in speed(args):
            print(f"| {name} | {ours:.4f} | {theirs:.4f} | {ours / theirs:.2f} |")
    if args.svi:
        print("\n| 100,000 points, 5 components, 2-D | value |\n|---|---|")
        for name, value in svi(args):
            print(f"| {name} | {value:.4f} |")


if __name__ == "__main__":
    main()

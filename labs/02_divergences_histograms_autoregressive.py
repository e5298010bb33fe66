# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 2 — Divergences, histograms and autoregressive models
#
# In this lab you will
# 1. meet the f-divergences D_f(P‖Q) = E_Q[f(p/q)], check them against numerical
#    integration, and see the variational (Fenchel) bound that f-GANs maximize;
# 2. estimate a marginal likelihood log p(x) by naive Monte Carlo and by importance
#    sampling, and see why the second one is the one we use;
# 3. count parameters: the joint histogram needs K^m − 1 of them (the curse of
#    dimensionality), the factorized model m(K − 1) but misses every dependency;
# 4. train three autoregressive models — Markov (finite window), recurrent, MADE — on
#    binarized 8×8 digits, compare their test log-likelihoods and look at their samples.
#
# Every exercise has a reference solution right below it. Run the whole file as a script
# (`python labs/02_divergences_histograms_autoregressive.py`) or open it with Jupytext.
# `TFDGM_FAST=1` shrinks every training run so the lab finishes in seconds;
# `TFDGM_DIGITS=mnist5k` runs section 4 on 5,000 real 28×28 MNIST digits instead of the
# 8×8 ones (`pip install -e ".[data]"`; the full-length recurrent model then reads 784
# pixels in sequence and takes far longer).

# %% [markdown]
# ## Setup

# %%
import os

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

import tfdgm
from tfdgm import divergences, plotting
from tfdgm.models.autoregressive import MADE, MarkovAutoregressive, RNNAutoregressive
from tfdgm.models.histogram import FactorizedCategorical, Histogram

tfd = tfp.distributions
FAST = os.environ.get("TFDGM_FAST") == "1"
OUT = os.environ.get("TFDGM_LAB_OUT", "lab_outputs")
os.makedirs(OUT, exist_ok=True)
keras.utils.set_random_seed(0)
# binarized 8x8 digits (64 pixels, x > 8 of 0..16), or "mnist5k" (28x28, x > 127)
digits = tfdgm.data.load(os.environ.get("TFDGM_DIGITS", "digits"))
SHAPE = digits.image_shape  # (8, 8) or (28, 28)
WIDTH = SHAPE[1]  # pixels per row
x_train, x_test = digits.x_train, digits.x_test
print(digits.description, x_train.shape, x_test.shape)

# %% [markdown]
# ## 1. f-divergences
#
# For a convex f with f(1) = 0, $D_f(P\|Q) = \int q(x) f\big(p(x)/q(x)\big)\,dx \ge 0$
# (Jensen: $\mathbb{E}_Q[f(p/q)] \ge f(\mathbb{E}_Q[p/q]) = f(1) = 0$). Different f give
# the KL divergence ($u\log u$), the reverse KL ($-\log u$), Pearson χ² ($(u-1)^2$), the
# squared Hellinger distance ($(\sqrt u - 1)^2$), and Jensen–Shannon. `tfdgm.divergences`
# holds the table of Nowozin et al. (2016): each entry has f, f', the Fenchel conjugate f*
# and the output activation an f-GAN critic uses.

# %%
for name, d in divergences.F_DIVERGENCES.items():
    print(f"{name:>18}:  f(u) = {d.formula:<42} dom f* = {d.domain}")

p, q = tfd.Normal(0.0, 1.0), tfd.Normal(1.0, 1.5)
grid = np.linspace(-15, 15, 30_001)
px, qx = stats.norm.pdf(grid, 0, 1), stats.norm.pdf(grid, 1, 1.5)
print(f"\n{'divergence':>18}  {'quadrature':>10}  {'Monte Carlo (S=20k)':>19}")
for name, d in divergences.F_DIVERGENCES.items():
    exact = np.sum(qx * d.f(tf.constant(px / qx)).numpy()) * (grid[1] - grid[0])
    mc = divergences.f_divergence(p, q, name, num_samples=20_000, seed=(0, 1), closed_form=False)
    print(f"{name:>18}  {exact:10.4f}  {float(mc):19.4f}")

# %%
u = np.linspace(0.02, 4, 200)
fig, ax = plt.subplots(figsize=(5, 3.5))
for name, d in divergences.F_DIVERGENCES.items():
    ax.plot(u, d.f(tf.constant(u)).numpy(), label=name)
ax.set_ylim(-1, 3)
ax.axvline(1, color="gray", lw=0.5)
ax.set_xlabel("u = p/q")
ax.set_ylabel("f(u)")
ax.legend(fontsize=7)
fig.tight_layout()
plotting.save(fig, f"{OUT}/lab2_generators.png")

# %% [markdown]
# ### Exercise 1 — the variational bound
# For any function T with values in dom f*,
# $D_f(P\|Q) \ge \mathbb{E}_P[T(x)] - \mathbb{E}_Q[f^*(T(x))]$, with equality at
# $T^*(x) = f'\big(p(x)/q(x)\big)$ (Nguyen et al., 2010). Write `variational_bound(p, q,
# name, critic, num_samples, seed)` that estimates the right-hand side by Monte Carlo for
# a critic `critic(x) -> T(x)`. Check that the optimal critic reaches D_f and that a
# perturbed critic stays below it.


# %%
def variational_bound(p, q, name, critic, num_samples, seed):
    raise NotImplementedError  # your code here


# %% Reference solution
def variational_bound(p, q, name, critic, num_samples, seed):  # noqa: F811
    d = divergences.get(name)
    seed_p, seed_q = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    x_p, x_q = p.sample(num_samples, seed=seed_p), q.sample(num_samples, seed=seed_q)
    return tf.reduce_mean(critic(x_p)) - tf.reduce_mean(d.conjugate(critic(x_q)))


for name in ("kl", "pearson", "jensen_shannon"):
    d = divergences.get(name)
    optimal = lambda x, d=d: d.f_prime(tf.exp(p.log_prob(x) - q.log_prob(x)))
    perturbed = lambda x, d=d: d.f_prime(tf.exp(0.7 * (p.log_prob(x) - q.log_prob(x))))
    seed = tf.constant([3, 4])
    best = float(variational_bound(p, q, name, optimal, 50_000, seed))
    worse = float(variational_bound(p, q, name, perturbed, 50_000, seed))
    truth = float(divergences.f_divergence(p, q, name, num_samples=50_000, seed=(5, 6)))
    print(f"{name:>15}: D_f = {truth:.4f}, bound(T*) = {best:.4f}, bound(perturbed) = {worse:.4f}")

# %% [markdown]
# ## 2. Estimating a marginal likelihood
#
# For a latent-variable model, $p(x) = \int p(x|z) p(z)\,dz$. Naive Monte Carlo averages
# p(x|z_s) over prior draws; importance sampling averages $p(x|z_s)p(z_s)/q(z_s|x)$ over
# draws from a proposal close to the posterior. Both are unbiased for p(x); their variances
# differ by orders of magnitude when the posterior is narrow. A linear-Gaussian model has a
# closed-form p(x), so we can see it:
# z ~ N(0, I_2), x|z ~ N(Wz + b, 0.1² I_3), hence x ~ N(b, WWᵀ + 0.01 I).

# %%
rng = np.random.default_rng(0)
W, b, s = rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=3).astype("float32"), 0.1
prior = tfd.MultivariateNormalDiag(tf.zeros(2))
likelihood = lambda z: tfd.MultivariateNormalDiag(tf.linalg.matvec(W, z) + b, s * tf.ones(3))
x_obs = (W @ rng.normal(size=2) + b + s * rng.normal(size=3)).astype("float32")[None]
exact = stats.multivariate_normal(b, W @ W.T + s**2 * np.eye(3)).logpdf(x_obs[0])
post_cov = np.linalg.inv(np.eye(2) + W.T @ W / s**2)
post_mean = (post_cov @ W.T @ (x_obs[0] - b) / s**2).astype("float32")
proposal = tfd.MultivariateNormalTriL(post_mean, 1.3 * np.linalg.cholesky(post_cov).astype("f"))

sizes = [10, 100, 1000] if FAST else [10, 100, 1000, 10_000, 100_000]
rows = []
for num in sizes:
    naive = divergences.monte_carlo_marginal(prior, likelihood, x_obs, num, seed=(1, num))
    imp = divergences.importance_sampling_marginal(
        prior, likelihood, proposal, x_obs, num, seed=(2, num)
    )
    rows.append([num, *[float(t[0]) for t in (*naive, *imp)]])
    print(
        f"S={num:>6}: naive {rows[-1][1]:8.3f} ± {rows[-1][2]:.3f}   "
        f"IS {rows[-1][3]:8.3f} ± {rows[-1][4]:.4f}   exact {exact:.3f}"
    )
rows = np.array(rows)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.errorbar(rows[:, 0], rows[:, 1], 2 * rows[:, 2], fmt="o-", label="naive MC (prior)")
ax.errorbar(rows[:, 0] * 1.1, rows[:, 3], 2 * rows[:, 4], fmt="s-", label="importance sampling")
ax.axhline(exact, color="k", lw=0.8, label="exact log p(x)")
ax.set_xscale("log")
ax.set_xlabel("number of samples S")
ax.set_ylabel("estimate of log p(x) (± 2 s.e.)")
ax.legend(fontsize=8)
fig.tight_layout()
plotting.save(fig, f"{OUT}/lab2_marginal_likelihood.png")

# %% [markdown]
# ### Exercise 2 — effective sample size
# The effective sample size of normalized weights is $\mathrm{ESS} = (\sum_s w_s)^2 /
# \sum_s w_s^2$ (between 1 and S). Compute it for 1000 prior draws and for 1000 proposal
# draws at `x_obs`. Work with log-weights to avoid underflow.


# %%
def effective_sample_size(log_w):
    raise NotImplementedError  # your code here


# %% Reference solution
def effective_sample_size(log_w):  # noqa: F811
    return float(tf.exp(2 * tf.reduce_logsumexp(log_w) - tf.reduce_logsumexp(2 * log_w)))


z_prior = prior.sample(1000, seed=(7, 0))
log_w_prior = likelihood(z_prior).log_prob(x_obs[0])
z_q = proposal.sample(1000, seed=(7, 1))
log_w_q = likelihood(z_q).log_prob(x_obs[0]) + prior.log_prob(z_q) - proposal.log_prob(z_q)
print(f"ESS of 1000 prior draws: {effective_sample_size(log_w_prior):.1f}")
print(f"ESS of 1000 proposal draws: {effective_sample_size(log_w_q):.1f}")

# %% [markdown]
# ## 3. The curse of dimensionality
#
# A distribution over m variables with K values each is a table of K^m probabilities:
# K^m − 1 free parameters. For the 64 binary pixels of a digit that is 2^64 − 1 ≈ 1.8·10^19,
# so `Histogram` refuses. Assuming independence leaves m(K − 1) parameters, but a product
# of marginals cannot draw a stroke. Autoregressive models sit in between: the chain rule
# is exact, and a shared network keeps the parameter count moderate.

# %%
try:
    Histogram((64,), num_categories=2)
except ValueError as error:
    print("Histogram refuses:", error)

print(f"\n{'m':>3} {'histogram K^m-1':>26} {'factorized':>10} {'markov d=8':>10} {'MADE h=64':>10}")
for m in (4, 8, 16, 32, 64):
    hist = 2**m - 1
    fact = FactorizedCategorical((m,), 2).num_parameters
    markov = MarkovAutoregressive((m,), 2, window=8, hidden_units=(64,)).num_parameters
    made = MADE((m,), 2, hidden_units=(64,)).num_parameters
    print(f"{m:>3} {hist:>26,} {fact:>10,} {markov:>10,} {made:>10,}")

# %% [markdown]
# On a tiny space the histogram is fine: the `digits-crop8` dataset keeps the central 2×4
# pixels (256 configurations). Both count-based models are trained through `fit` (one pass
# adds the counts); compare their test negative log-likelihoods in nats per 8-pixel crop.

# %%
crop = tfdgm.data.load("digits-crop8")
crop_models = {
    "histogram": Histogram.for_dataset(crop, smoothing=1.0),
    "factorized": FactorizedCategorical.for_dataset(crop, smoothing=1.0),
}
for name, model in crop_models.items():
    model.compile_default()
    model.fit(crop.x_train, epochs=1, batch_size=256, verbose=0)
    nll = -float(tf.reduce_mean(model.log_prob(crop.x_test)))
    print(f"{name:>10}: {model.num_parameters:>3} parameters, test NLL {nll:.3f} nats")

# %% [markdown]
# ### Exercise 3 — how much smoothing?
# With smoothing α = 0 (maximum likelihood) a crop never seen in training gets probability
# 0 and an infinite test NLL. Fit `Histogram` on the crops for α in {0, 0.01, 0.1, 1, 10}
# and print the test NLL and the number of test crops unseen in training.


# %%
def smoothing_sweep(alphas):
    raise NotImplementedError  # your code here


# %% Reference solution
def smoothing_sweep(alphas):  # noqa: F811
    results = {}
    for alpha in alphas:
        model = Histogram.for_dataset(crop, smoothing=alpha)
        model.compile_default()
        model.fit(crop.x_train, epochs=1, batch_size=256, verbose=0)
        log_p = model.log_prob(crop.x_test).numpy()
        results[alpha] = (-float(np.mean(log_p)), int(np.sum(np.isinf(log_p))))
    return results


for alpha, (nll, unseen) in smoothing_sweep([0.0, 0.01, 0.1, 1.0, 10.0]).items():
    print(f"alpha={alpha:<5}: test NLL {nll:8.3f} nats, {unseen} test crops with p = 0")

# %% [markdown]
# ## 4. Autoregressive models on the digits
#
# $p(x) = \prod_i p(x_i | x_{<i})$ with pixels in raster order. Three ways to compute the
# conditionals, all trained by teacher forcing (every conditional in one pass) and sampled
# one pixel at a time:
#
# - `MarkovAutoregressive`: an MLP on the previous d pixels and the position;
# - `RNNAutoregressive`: a GRU whose state has read every previous pixel;
# - `MADE`: one masked MLP outputs all conditionals (64 for the 8×8 digits).

# %%
EPOCHS = {"markov": 1, "rnn": 1, "made": 1} if FAST else {"markov": 100, "rnn": 30, "made": 60}
train = x_train[:256] if FAST else x_train
ar_models = {
    "markov": MarkovAutoregressive.for_dataset(digits, window=16, hidden_units=(256,), seed=0),
    "rnn": RNNAutoregressive.for_dataset(digits, units=32 if FAST else 128, seed=0),
    "made": MADE.for_dataset(digits, hidden_units=(128,) if FAST else (512, 512), seed=0),
}
learning_rates = {"markov": 1e-3, "rnn": 1e-2, "made": 1e-3}
for name, model in ar_models.items():
    model.compile_default(learning_rate=learning_rates[name])
    model.fit(train, epochs=EPOCHS[name], batch_size=64, verbose=0)
    nll = -float(tf.reduce_mean(model.log_prob(x_test)))
    print(f"{name:>7}: {model.num_parameters:>7,} parameters, test NLL {nll:6.2f} nats/image")

# %%
for name, model in ar_models.items():
    fig = plotting.image_grid(model.sample(32, seed=(0, 1)), SHAPE, title=f"{name} samples")
    plotting.save(fig, f"{OUT}/lab2_samples_{name}.png")

# %% [markdown]
# ### Exercise 4 — how far back must a Markov model look?
# Train `MarkovAutoregressive` with windows d ∈ {1, W, 2W} (same width and epochs; W = 8
# for the 8×8 digits, 28 for MNIST) and report the test NLL. A digit row has W pixels:
# what changes once the window reaches the pixel directly above?


# %%
def window_sweep(windows, epochs):
    raise NotImplementedError  # your code here


# %% Reference solution
def window_sweep(windows, epochs):  # noqa: F811
    results = {}
    for d in windows:
        width = (32,) if FAST else (128,)
        model = MarkovAutoregressive.for_dataset(digits, window=d, hidden_units=width, seed=0)
        model.compile_default(learning_rate=1e-3)
        model.fit(train, epochs=epochs, batch_size=64, verbose=0)
        results[d] = -float(tf.reduce_mean(model.log_prob(x_test)))
    return results


windows = [1, WIDTH] if FAST else [1, WIDTH, 2 * WIDTH]  # [1, 8, 16] on the 8x8 digits
for d, nll in window_sweep(windows, epochs=1 if FAST else 40).items():
    print(f"window d={d:>2}: test NLL {nll:6.2f} nats/image")
# With d >= W the conditional sees the pixel directly above (x_{i-W}), and strokes continue
# vertically. (Fast mode trains for one epoch on 256 images: too little to compare windows.)

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
# # Lab 7 — Denoising diffusion models
#
# In this lab you will
# 1. noise data with the forward process q(x_t | x_0) and check its closed form against
#    the step-by-step chain;
# 2. write the variational bound of a diffusion model as code, for data whose optimal
#    denoiser is known, and see it sit above the true negative log-likelihood;
# 3. find the weight that turns each KL term into Ho et al.'s ε-prediction loss;
# 4. train a DDPM on 8 Gaussians and on 8×8 digits;
# 5. write the DDIM step yourself and compare DDPM with DDIM, and quality against steps.
#
# Every exercise has a reference solution right below it. Run the whole file as a script
# (`python labs/07_denoising_diffusion.py`) or open it as a notebook with Jupytext.
# `TFDGM_FAST=1` shrinks every training run so the lab finishes in seconds (its samples are
# then noise: the figures of the full run are on the docs page `docs/diffusion.md`);
# `TFDGM_DIGITS=mnist5k` runs it on 5,000 real 28×28 MNIST digits (`mnist5k-continuous`)
# instead of the 8×8 ones (`pip install -e ".[data]"`).

# %% [markdown]
# ## Setup

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from scipy import stats

import tfdgm
from tfdgm import metrics, plotting
from tfdgm.models.diffusion import DDPM
from tfdgm.schedules import NoiseSchedule

FAST = os.environ.get("TFDGM_FAST") == "1"
OUT = os.environ.get("TFDGM_LAB_OUT", "lab_outputs")
os.makedirs(OUT, exist_ok=True)
T = 100 if FAST else 1000
# dequantized 8x8 digits in [0, 1), or "mnist5k" (28x28, (x + u)/256)
digits = tfdgm.data.load(os.environ.get("TFDGM_DIGITS", "digits") + "-continuous")
SHAPE = digits.image_shape  # (8, 8) or (28, 28)
D = int(np.prod(SHAPE))
toys = tfdgm.data.load("8gaussians")
print(digits.description, digits.x_train.shape)

# %% [markdown]
# ## 1. The forward process
#
# Data are mapped to y_0 ∈ [−1, 1]. With a schedule β_1, …, β_T, α_t = 1 − β_t and
# ᾱ_t = ∏_{s ≤ t} α_s, the forward chain adds a little Gaussian noise per step,
#
# $$q(y_t \mid y_{t-1}) = \mathcal N(\sqrt{\alpha_t}\, y_{t-1}, \beta_t I),$$
#
# and since a sum of Gaussians is Gaussian, t steps at once are
# $q(y_t \mid y_0) = \mathcal N(\sqrt{\bar\alpha_t}\, y_0, (1-\bar\alpha_t) I)$.
#
# ### Exercise 1 — closed form against the chain
# Write `noise_chain(y0, betas, rng)` that runs the chain step by step and returns every
# y_t, and `noise_closed_form(y0, alpha_bar_t, eps)`. Run the chain on many copies of one
# digit and compare the empirical mean and variance at a few t with the closed form.


# %%
def noise_chain(y0, betas, rng):
    raise NotImplementedError  # your code here


def noise_closed_form(y0, alpha_bar_t, eps):
    raise NotImplementedError  # your code here


# %% Reference solution
def noise_chain(y0, betas, rng):  # noqa: F811
    states, y = [], y0
    for beta in betas:
        y = np.sqrt(1.0 - beta) * y + np.sqrt(beta) * rng.standard_normal(y.shape)
        states.append(y)
    return np.stack(states)  # [T, ...]


def noise_closed_form(y0, alpha_bar_t, eps):  # noqa: F811
    return np.sqrt(alpha_bar_t) * y0 + np.sqrt(1.0 - alpha_bar_t) * eps


schedule = NoiseSchedule(T)
y0 = 2.0 * digits.x_train[0] - 1.0  # one digit in [-1, 1]
chain = noise_chain(np.tile(y0, (2000, 1)), schedule.betas, np.random.default_rng(0))
for t in (T // 10, T // 2, T):
    ab = schedule.alpha_bar[t - 1]
    mean_err = np.abs(chain[t - 1].mean(0) - np.sqrt(ab) * y0).max()
    var_err = np.abs(chain[t - 1].var(0) - (1 - ab)).max()
    print(f"t = {t:4d}: abar = {ab:.4f}, max |mean - closed form| = {mean_err:.3f}, "
          f"max |var - (1 - abar)| = {var_err:.3f}")  # fmt: skip

# %% [markdown]
# The differences are sampling error (2000 chains: about 0.05 on the mean and the
# variance). The picture shows eight test digits along the forward process (the same as
# `model.forward_marginal(y0, t)` and the run folder's `forward_process.png`).

# %%
ts = np.linspace(0, T, 9).round().astype(int)
eps = np.random.default_rng(1).standard_normal((8, D))
x0 = 2.0 * digits.x_test[:8] - 1.0
rows = [x0] + [noise_closed_form(x0, schedule.alpha_bar[t - 1], eps) for t in ts[1:]]
grid = (np.stack(rows, 1).reshape(-1, D) + 1.0) / 2.0
fig = plotting.image_grid(grid, SHAPE, ncols=9, title=f"q(x_t | x_0), t = {list(ts)}")
plotting.save(fig, f"{OUT}/forward_process.png")

# %% [markdown]
# ## 2. The variational bound, as code
#
# The reverse model p(y_{t−1} | y_t) = N(μ_θ(y_t, t), σ_t² I) is fitted to the posterior of
# the forward chain, which is Gaussian (Bayes' rule for two Gaussians):
#
# $$q(y_{t-1}\mid y_t, y_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I),\quad
#   \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1-\bar\alpha_t} y_0
#   + \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t} y_t,\quad
#   \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t .$$
#
# Jensen's inequality on log p(y_0) = log E_q[p(y_{0:T}) / q(y_{1:T} | y_0)] and the Markov
# property give (Sohl-Dickstein et al., 2015; Ho et al., 2020, eq. 5)
#
# $$-\log p(y_0) \le \underbrace{\mathrm{KL}(q(y_T\mid y_0)\,\|\,\mathcal N(0, I))}_{L_T}
#   + \sum_{t=2}^T \mathbb E_q\,\underbrace{\mathrm{KL}(q(y_{t-1}\mid y_t, y_0)\,\|\,
#   p(y_{t-1}\mid y_t))}_{L_{t-1}} \; \underbrace{-\,\mathbb E_q \log p(y_0\mid y_1)}_{L_0}.$$
#
# The network predicts ε̂(y_t, t); then ŷ_0 = (y_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t and μ_θ is the
# posterior mean at ŷ_0. For one-dimensional data N(m, s²) the best ε̂ is known in closed
# form: y_t is Gaussian with mean √ᾱ_t m and variance v_t = ᾱ_t s² + 1 − ᾱ_t, and
# ε̂ = E[ε | y_t] = √(1 − ᾱ_t)(y_t − √ᾱ_t m)/v_t.
#
# ### Exercise 2 — the bound of the optimal model
# Write `negative_bound(y0, rng)` for that model (σ_t² = β̃_t, and L_0 the Gaussian
# density N(y_0; ŷ_0(y_1, 1), β̃_2)): one y_t per t, all t at once with NumPy. Compare its
# mean over data points with the true NLL −log N(y_0; m, s²).

# %%
M, S = 0.3, 0.2
ab_all = np.concatenate([[1.0], schedule.alpha_bar])  # abar_0 = 1, abar_1..abar_T


def optimal_eps(y_t, ab):
    return np.sqrt(1.0 - ab) * (y_t - np.sqrt(ab) * M) / (ab * S**2 + 1.0 - ab)


def gaussian_kl(m1, v1, m2, v2):
    return 0.5 * (np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1.0)


def negative_bound(y0, rng):
    raise NotImplementedError  # your code here


# %% Reference solution
def posterior_mean_var(y_t, y0, t):
    ab_t, ab_s, beta = ab_all[t], ab_all[t - 1], 1.0 - ab_all[t] / ab_all[t - 1]
    mean = (
        np.sqrt(ab_s) * beta / (1 - ab_t) * y0 + np.sqrt(1 - beta) * (1 - ab_s) / (1 - ab_t) * y_t
    )
    return mean, (1 - ab_s) / (1 - ab_t) * beta


def negative_bound(y0, rng):  # noqa: F811
    t = np.arange(1, T + 1)[:, None]  # [T, 1] against y0 [1, N]
    y_t = np.sqrt(ab_all[t]) * y0 + np.sqrt(1 - ab_all[t]) * rng.standard_normal((T, y0.size))
    y0_hat = (y_t - np.sqrt(1 - ab_all[t]) * optimal_eps(y_t, ab_all[t])) / np.sqrt(ab_all[t])
    q_mean, q_var = posterior_mean_var(y_t, y0, t)
    p_mean, _ = posterior_mean_var(y_t, y0_hat, t)
    l_t = gaussian_kl(q_mean[1:], q_var[1:], p_mean[1:], q_var[1:]).sum(0)  # t = 2..T
    l_T = gaussian_kl(np.sqrt(ab_all[T]) * y0, 1 - ab_all[T], 0.0, 1.0)
    l_0 = -stats.norm.logpdf(y0, y0_hat[0], np.sqrt(q_var[1]))  # y_1 row, variance of t = 2
    return l_T + l_t + l_0


y0_data = np.random.default_rng(2).normal(M, S, 4000)
bound = negative_bound(y0_data[None, :], np.random.default_rng(3))[0]
true_nll = -stats.norm.logpdf(y0_data, M, S)
gap = bound - true_nll
print(f"true NLL {true_nll.mean():.3f}, -bound {bound.mean():.3f} nats, "
      f"gap {gap.mean():.3f} ± {gap.std() / np.sqrt(gap.size):.3f}")  # fmt: skip

# %% [markdown]
# The gap stays positive even for the best possible ε̂: the true reverse transitions are
# not exactly Gaussian with variance β̃_t (learning σ_t, as Nichol & Dhariwal do, narrows
# it). `DDPM.elbo` computes the same bound with KLs in closed form (discrete data get the
# discretized decoder of Ho et al. §3.3, so their bound is in nats of the data); the
# tests check it against the same optimal denoiser in 2-D.
#
# ### Exercise 3 — from KL to the ε loss
# Both Gaussians in L_{t−1} share the variance β̃_t, so L_{t−1} = ‖μ̃_t − μ_θ‖²/(2β̃_t).
# Substituting y_0 = (y_t − √(1 − ᾱ_t) ε)/√ᾱ_t, find the weight λ_t with
# L_{t−1} = λ_t ‖ε − ε̂‖², and check it numerically. Ho et al. drop λ_t ("L_simple"), which
# weights the large-t terms up; `DDPM.objective` is that simple loss.


# %%
def kl_weight(t):
    raise NotImplementedError  # your code here


# %% Reference solution
def kl_weight(t):  # noqa: F811
    beta, ab_t = 1.0 - ab_all[t] / ab_all[t - 1], ab_all[t]
    var = (1 - ab_all[t - 1]) / (1 - ab_t) * beta
    return beta**2 / (2 * var * (1 - beta) * (1 - ab_t))


rng = np.random.default_rng(4)
for t in (2, T // 2, T):
    y0_, eps_, eps_hat = rng.standard_normal(3)
    y_t = np.sqrt(ab_all[t]) * y0_ + np.sqrt(1 - ab_all[t]) * eps_
    y0_hat = (y_t - np.sqrt(1 - ab_all[t]) * eps_hat) / np.sqrt(ab_all[t])
    (q_mean, q_var), (p_mean, _) = (
        posterior_mean_var(y_t, y0_, t),
        posterior_mean_var(y_t, y0_hat, t),
    )
    print(f"t = {t:4d}: KL {gaussian_kl(q_mean, q_var, p_mean, q_var):.6f} = "
          f"lambda_t |eps - eps_hat|^2 {kl_weight(t) * (eps_ - eps_hat) ** 2:.6f}, "
          f"lambda_t = {kl_weight(t):.4g}")  # fmt: skip

# %% [markdown]
# ## 3. Training
#
# `DDPM.for_dataset` picks a residual MLP with a sinusoidal time embedding for vectors and a
# small U-Net for images; training draws t ~ U{1..T} and ε per example and regresses ε̂ on ε.
# The weights used for sampling are an exponential moving average of the trained ones
# (updated inside the compiled train step by the `after_update` hook).

# %%
toy_model = DDPM.for_dataset(toys, num_timesteps=T, units=64 if FAST else 128, num_blocks=2, seed=0)
toy_model.compile_default()
start = time.perf_counter()
toy_model.fit(
    toys.x_train[: 512 if FAST else None], epochs=1 if FAST else 100, batch_size=128, verbose=0
)
print(f"8 Gaussians: trained in {time.perf_counter() - start:.0f} s")

# the fast mode trains a small MLP for one pass over 256 digits (the U-Net's graph alone
# takes longer to build than the whole fast lab may run)
tiny = dict(architecture="mlp", units=32, num_blocks=1, embedding_dim=8) if FAST else {}
digit_model = DDPM.for_dataset(digits, num_timesteps=T, seed=0, **tiny)
digit_model.compile_default()
start = time.perf_counter()
digit_model.fit(
    digits.x_train[: 256 if FAST else None], epochs=1 if FAST else 100, batch_size=64, verbose=0
)
print(f"digits: trained in {time.perf_counter() - start:.0f} s")
# (or load a run: keras.saving.load_model("runs/ddpm-digits-continuous/model.keras"))

# %% [markdown]
# ## 4. DDPM against DDIM
#
# DDIM (Song et al., 2021) keeps the same trained network but walks a subsequence
# τ_0 = 0 < … < τ_S = T with the step
#
# $$y_s = \sqrt{\bar\alpha_s}\,\hat y_0 + \sqrt{1 - \bar\alpha_s - \sigma^2}\,\hat\varepsilon
#   + \sigma z,\qquad \sigma = \eta\,\sqrt{\tilde\beta_{t,s}},$$
#
# deterministic at η = 0, the ancestral (DDPM) sampler at η = 1.
#
# ### Exercise 4 — the DDIM step
# Write the deterministic (η = 0) DDIM loop from y_T with `model.predict(y, t, clip=False)`
# (it returns ŷ_0 and ε̂ from the EMA network) and `model.timesteps(S)`, and check it
# against `model.decode(y_T, num_steps=S)`.


# %%
def ddim(model, y_T, num_steps):
    raise NotImplementedError  # your code here


# %% Reference solution
def ddim(model, y_T, num_steps):  # noqa: F811
    taus = np.asarray(model.timesteps(num_steps))
    log_ab = model.schedule.log_alpha_bar
    y = tf.constant(y_T, tf.float32)
    for t, s in zip(taus[:0:-1], taus[-2::-1]):
        y0_hat, eps_hat = model.predict(y, int(t), clip=False)
        ab_s = np.exp(log_ab[s])
        y = np.sqrt(ab_s) * y0_hat + np.sqrt(1.0 - ab_s) * eps_hat
    return np.asarray(model.denormalize(y, quantize=False))


y_T = np.random.default_rng(5).standard_normal((200, 2)).astype(np.float32)
mine = ddim(toy_model, y_T, 10)
print("max |mine - model.decode| =", np.abs(mine - np.asarray(toy_model.decode(y_T, 10))).max())

# %% [markdown]
# Samples of the two samplers, and their cost: every step is one network evaluation.

# %%
settings = [("ddpm", T), ("ddpm", 50), ("ddim", 50), ("ddim", 10)]
fig, axes = plt.subplots(1, len(settings), figsize=(4 * len(settings), 4))
for ax, (sampler, steps) in zip(axes, settings):
    start = time.perf_counter()
    samples = np.asarray(toy_model.sample(1000, seed=(0, 1), num_steps=steps, sampler=sampler))
    seconds = time.perf_counter() - start
    quality = metrics.sample_quality(samples, toys)
    ax.scatter(*toys.x_test.T, s=2, c="lightgray")
    ax.scatter(*samples.T, s=2)
    ax.set_title(f"{sampler} {steps} steps: {quality['modes_covered']}/8 modes, {seconds:.1f} s")
    print(f"{sampler} {steps:4d} steps: modes {quality['modes_covered']}/8, "
          f"KID {quality['kid']:.4f}, {seconds:.2f} s")  # fmt: skip
plotting.save(fig, f"{OUT}/ddpm_vs_ddim.png")

# %% [markdown]
# ## 5. Quality against the number of steps
#
# On digits, the Fréchet distance (FD) and KID in the feature space of the shipped digit
# classifier (`tfdgm.metrics.sample_quality`) against the number of DDIM steps, with the
# train-vs-test reference (what a model that memorized the training set would score).
#
# ### Exercise 5 — a steps/quality table
# For S in (10, 20, 50, 100, T) draw 300 digits with DDIM (η = 0) and record FD, KID and the
# seconds per image; plot FD against S on a log axis.


# %%
def steps_table(model, steps):
    raise NotImplementedError  # your code here


# %% Reference solution
def steps_table(model, steps):  # noqa: F811
    rows = []
    for s in steps:
        start = time.perf_counter()
        samples = model.sample(300, seed=(0, 2), num_steps=s, sampler="ddim")
        seconds = (time.perf_counter() - start) / 300
        quality = metrics.sample_quality(np.asarray(samples), digits)
        rows.append((s, quality["fd"], quality["kid"], seconds))
    return rows


steps = (2, 5) if FAST else (10, 20, 50, 100, T)
table = steps_table(digit_model, steps)
reference = metrics.sample_quality(digits.x_train[:300], digits)
print(f"train vs test reference: FD {reference['fd']:.2f}, KID {reference['kid']:.3f}")
for s, fd, kid, seconds in table:
    print(f"DDIM {s:4d} steps: FD {fd:7.2f}  KID {kid:.3f}  {1e3 * seconds:.2f} ms/image")
fig, ax = plt.subplots(figsize=(5, 4))
ax.plot([r[0] for r in table], [r[1] for r in table], "o-", label="DDIM (η = 0)")
ax.axhline(reference["fd"], color="gray", ls="--", label="train vs test")
ax.set(xscale="log", xlabel="steps", ylabel="FD (classifier features)", title="steps vs quality")
ax.legend()
plotting.save(fig, f"{OUT}/steps_vs_quality.png")
fig = plotting.image_grid(
    np.asarray(digit_model.sample(64, seed=(0, 3), num_steps=50, sampler="ddim")), SHAPE
)
plotting.save(fig, f"{OUT}/digit_samples.png")

# %% [markdown]
# ## What to take away
# - The forward process has a closed form at every t, so training needs no chain: one t and
#   one ε per example.
# - The variational bound is a sum of Gaussian KLs; with ε-prediction each is a weighted
#   squared error, and dropping the weights gives the simple loss.
# - The same network serves DDPM (stochastic, T steps) and DDIM (deterministic, any
#   subsequence): quality degrades gracefully as the steps fall, and cost is linear in them.

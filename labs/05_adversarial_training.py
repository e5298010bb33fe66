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
# # Lab 5 — Adversarial training and f-divergences
#
# In this lab you will
# 1. find the optimal discriminator of the GAN game and check that the game's value is then
#    2·JS − log 4;
# 2. compute Fenchel conjugates numerically and meet the f-GAN table;
# 3. see why the generator's "non-saturating" loss exists;
# 4. train a GAN, f-GANs, a WGAN-GP and an MMD network on 8 Gaussians and judge them by
#    their samples (mode coverage, high-quality fraction, Fréchet distance, KID);
# 5. write the WGAN-GP gradient penalty and the Fréchet distance yourself.
#
# Every exercise has a reference solution right below it. Run the whole file as a script
# (`python labs/05_adversarial_training.py`) or open it as a notebook with Jupytext.
# `TFDGM_FAST=1` shrinks every training run so the lab finishes in seconds;
# `TFDGM_DIGITS=mnist5k` runs its digits section on 5,000 real 28×28 MNIST digits instead of
# the 8×8 ones (`pip install -e ".[data]"`).

# %% [markdown]
# ## Setup

# %%
import os

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from scipy import linalg

import tfdgm
from tfdgm import metrics, plotting
from tfdgm.callbacks import SampleQuality

FAST = os.environ.get("TFDGM_FAST") == "1"
OUT = os.environ.get("TFDGM_LAB_OUT", "lab_outputs")
os.makedirs(OUT, exist_ok=True)
EPOCHS = 2 if FAST else 60  # passes over 12,800 points, 50 batches of 256 each
toys = tfdgm.data.load_toy("8gaussians", num_train=256 * (4 if FAST else 50), num_test=1000)
print(toys.description, toys.x_train.shape)

# %% [markdown]
# ## 1. The minimax game and its optimal discriminator
#
# A GAN (Goodfellow et al., 2014) pits a generator G, which maps noise z ~ N(0, I) to
# x = G(z) with distribution Q, against a discriminator D(x) ∈ (0, 1):
#
# $$\min_G \max_D V(D, G) = \mathbb{E}_{x \sim P}[\log D(x)]
#   + \mathbb{E}_{x \sim Q}[\log(1 - D(x))].$$
#
# For fixed G, the integrand p log D + q log(1 − D) is maximized pointwise at
# $D^*(x) = p(x) / (p(x) + q(x))$, and then
# $V(D^*, G) = \mathrm{KL}(P\|M) + \mathrm{KL}(Q\|M) - \log 4 = 2\,\mathrm{JS}(P, Q) - \log 4$
# with M = (P + Q)/2. So the generator, against a perfect discriminator, minimizes the
# Jensen–Shannon divergence.
#
# ### Exercise 1 — check it on a grid
# For P = N(0, 1) and Q = N(2, 0.5²), compute on a fine grid (i) V(D*, G) by numerical
# integration, (ii) JS(P, Q) from its definition, and compare V with 2·JS − log 4.
# Then evaluate V for a *worse* discriminator, e.g. D = sigmoid(0.5 · logit D*).
# Work with the logit a(x) = log p(x) − log q(x) of D* (D = sigmoid(a)): log D = −softplus(−a)
# and log(1 − D) = −softplus(a) stay finite where D* rounds to 0 or 1.


# %%
def gaussian_pdf(x, loc, scale):
    return np.exp(-0.5 * ((x - loc) / scale) ** 2) / (scale * np.sqrt(2 * np.pi))


def value_and_js(logit, p, q, dx):
    raise NotImplementedError  # your code here


# %% Reference solution
def value_and_js(logit, p, q, dx):  # noqa: F811
    log_d, log_one_minus_d = -np.logaddexp(0, -logit), -np.logaddexp(0, logit)
    value = np.sum(p * log_d + q * log_one_minus_d) * dx
    m = 0.5 * (p + q)
    js = 0.5 * np.sum(p * np.log(p / m)) * dx + 0.5 * np.sum(q * np.log(q / m)) * dx
    return value, js


x = np.linspace(-8, 8, 40_001)
dx = x[1] - x[0]
p, q = gaussian_pdf(x, 0.0, 1.0), gaussian_pdf(x, 2.0, 0.5)
logit_star = np.log(p) - np.log(q)  # D*(x) = p / (p + q) = sigmoid(log p - log q)
value, js = value_and_js(logit_star, p, q, dx)
print(f"V(D*, G) = {value:.5f}   2 JS - log 4 = {2 * js - np.log(4):.5f}")
worse, _ = value_and_js(0.5 * logit_star, p, q, dx)
print(f"V with a worse discriminator = {worse:.5f} (smaller: D* maximizes V)")

# %% [markdown]
# `tfdgm.GAN.value_function(x_real, x_fake)` is the Monte-Carlo version of V; the tests
# of the library check it against 2·JS − log 4 with the discriminator fixed at D*.

# %% [markdown]
# ## 2. f-divergences and their conjugates
#
# Any convex f with f(1) = 0 defines $D_f(P\|Q) = \mathbb{E}_Q[f(p/q)]$. Its Fenchel
# conjugate $f^*(t) = \sup_u\, t u - f(u)$ gives, for any function T (Nguyen et al., 2010;
# Nowozin et al., 2016),
#
# $$D_f(P\|Q) \ge \mathbb{E}_P[T(x)] - \mathbb{E}_Q[f^*(T(x))],$$
#
# with equality at $T(x) = f'(p(x)/q(x))$. An f-GAN's discriminator outputs V(x) and
# T = g_f(V) with an activation g_f into the domain of f*. `tfdgm.divergences` holds the
# table (f, f', f*, g_f) for KL, reverse KL, Pearson χ², squared Hellinger, Jensen–Shannon
# and the GAN.
#
# ### Exercise 2 — conjugates by brute force
# Compute f*(t) = max over a fine grid of u > 0 of (t u − f(u)) for "kl" and "pearson",
# and compare with the table's `conjugate` at a few t.


# %%
def numerical_conjugate(f, t_values, u_grid):
    raise NotImplementedError  # your code here


# %% Reference solution
def numerical_conjugate(f, t_values, u_grid):  # noqa: F811
    fu = np.asarray(f(tf.constant(u_grid, tf.float64)))
    return np.array([np.max(t * u_grid - fu) for t in t_values])


u_grid = np.linspace(1e-6, 50.0, 500_001)
t_values = np.array([-2.0, -0.5, 0.0, 0.5, 1.5])
for name in ("kl", "pearson"):
    div = tfdgm.divergences.get(name)
    brute = numerical_conjugate(div.f, t_values, u_grid)
    exact = np.asarray(div.conjugate(tf.constant(t_values, tf.float64)))
    print(f"{name:8s} brute force {np.round(brute, 4)}  table {np.round(exact, 4)}")

# %% [markdown]
# ## 3. Saturation
#
# Early in training the discriminator easily rejects samples: D(G(z)) ≈ 0. The minimax
# generator loss log(1 − D) is then flat; the *non-saturating* loss −log D has a large
# gradient there (Goodfellow et al., 2014). With D = sigmoid(v):
#
# ### Exercise 3
# Plot |d/dv| of both generator losses against D = sigmoid(v) for v in [−8, 8]
# (use `tf.GradientTape`).


# %%
def generator_loss_gradients(v):
    raise NotImplementedError  # your code here


# %% Reference solution
def generator_loss_gradients(v):  # noqa: F811
    v = tf.constant(v)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(v)
        minimax = tf.math.log1p(-tf.sigmoid(v))  # log(1 - D)
        non_saturating = -tf.math.log(tf.sigmoid(v))  # -log D
    return np.abs(tape.gradient(minimax, v)), np.abs(tape.gradient(non_saturating, v))


v = np.linspace(-8, 8, 200)
g_minimax, g_ns = generator_loss_gradients(v)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogy(1 / (1 + np.exp(-v)), g_minimax, label="minimax: log(1 − D)")
ax.semilogy(1 / (1 + np.exp(-v)), g_ns, label="non-saturating: −log D")
ax.set(xlabel="D(G(z))", ylabel="|gradient w.r.t. the logit|")
ax.legend()
plotting.save(fig, f"{OUT}/lab5_saturation.png")

# %% [markdown]
# ## 4. Train a GAN on 8 Gaussians, judged by its samples
#
# A GAN has no density: `log_prob` raises `tfdgm.NoDensityError`. We judge it by its
# samples with `tfdgm.metrics`: the number of modes covered, the fraction of samples within
# 3 standard deviations of a mode, and the Fréchet distance and KID in data space.
# The `SampleQuality` callback logs them during `fit` (and to TensorBoard with `log_dir=`).

# %%
keras.utils.set_random_seed(0)
gan = tfdgm.GAN(event_shape=(2,), latent_dim=8, hidden_units=(64, 64), seed=0)
try:
    gan.log_prob(toys.x_test[:2])
except tfdgm.NoDensityError as error:
    print("log_prob:", error)
gan.compile_default(learning_rate=1e-3)
quality = SampleQuality(toys, every=max(1, EPOCHS // 6), image_dir=OUT)
history = gan.fit(toys.x_train, epochs=EPOCHS, batch_size=256, callbacks=[quality], verbose=0)
for record in quality.records:
    print({k: round(v, 3) for k, v in record.items()})
fig = plotting.training_curve(
    {k: history.history[k] for k in ("d_loss", "g_loss", "real_accuracy", "fake_accuracy")}
)
plotting.save(fig, f"{OUT}/lab5_gan_curve.png")

# %% [markdown]
# ## 5. f-GANs: which divergence?
#
# `tfdgm.FGAN(divergence=...)` trains the same networks on the variational bound of another
# f-divergence. KL(P‖Q) punishes a model that misses data (mass-covering); reverse KL
# punishes a model that puts mass where there is no data (mode-seeking).
#
# ### Exercise 4
# Train an f-GAN for "kl", "reverse_kl" and "pearson" with the settings of section 4 and
# tabulate modes covered, high-quality fraction and FD.


# %%
def compare_divergences(names):
    raise NotImplementedError  # your code here


# %% Reference solution
def compare_divergences(names):  # noqa: F811
    rows = {}
    for name in names:
        keras.utils.set_random_seed(0)
        model = tfdgm.FGAN(
            event_shape=(2,), divergence=name, latent_dim=8, hidden_units=(64, 64), seed=0
        )
        model.compile_default(learning_rate=1e-3)
        model.fit(toys.x_train, epochs=EPOCHS, batch_size=256, verbose=0)
        rows[name] = metrics.sample_quality(model, toys, num_samples=2000)
    return rows


divergence_table = compare_divergences(
    ["kl", "reverse_kl"] if FAST else ["kl", "reverse_kl", "pearson"]
)
for name, row in divergence_table.items():
    print(f"{name:12s}", {k: round(v, 3) for k, v in row.items()})

# %% [markdown]
# ## 6. WGAN-GP and the gradient penalty
#
# The Wasserstein-1 distance is $\sup_{\|C\|_L \le 1} \mathbb{E}_P[C] - \mathbb{E}_Q[C]$.
# WGAN-GP (Gulrajani et al., 2017) keeps the critic C near 1-Lipschitz with the penalty
# $\lambda\,\mathbb{E}_{\hat x}[(\|\nabla C(\hat x)\|_2 - 1)^2]$ on interpolates
# $\hat x = \epsilon x + (1 - \epsilon) G(z)$, ε ~ U[0, 1].
#
# ### Exercise 5
# Write the penalty with `tf.GradientTape`, using the model's own `interpolate` (so the
# ε are the same) and `discriminate`, and compare with `WGANGP.gradient_penalty`.


# %%
def my_gradient_penalty(model, x_real, x_fake, seed):
    raise NotImplementedError  # your code here


# %% Reference solution
def my_gradient_penalty(model, x_real, x_fake, seed):  # noqa: F811
    x_hat = model.interpolate(x_real, x_fake, seed=seed)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        critic = model.discriminate(x_hat)
    norms = tf.norm(tape.gradient(critic, x_hat), axis=-1)
    return tf.reduce_mean(tf.square(norms - 1.0))


keras.utils.set_random_seed(0)
wgan = tfdgm.WGANGP(
    event_shape=(2,),
    latent_dim=8,
    hidden_units=(64, 64),
    discriminator_steps=3,
    gradient_penalty_weight=1.0,
    seed=0,
)
wgan.compile_default(learning_rate=1e-3)
wgan.fit(toys.x_train, epochs=max(1, EPOCHS // 2), batch_size=256, verbose=0)
fake = wgan.sample(256, seed=(5, 5))
print(
    "gradient penalty: mine",
    float(my_gradient_penalty(wgan, toys.x_test[:256], fake, (6, 6))),
    " library",
    float(wgan.gradient_penalty(toys.x_test[:256], fake, seed=(6, 6))),
)

# %% [markdown]
# ## 7. MMD networks, and all four side by side
#
# A generative moment matching network (Li et al., 2015) has no discriminator at all: it
# minimizes the maximum mean discrepancy between data and samples under a mixture of
# Gaussian kernels, a two-sample statistic (`tfdgm.metrics.mmd2`).

# %%
keras.utils.set_random_seed(0)
mmd = tfdgm.MMDNetwork(
    event_shape=(2,),
    latent_dim=8,
    hidden_units=(64, 64),
    bandwidths=(0.1, 0.2, 0.5, 1.0, 2.0),
    seed=0,
)
mmd.compile_default(learning_rate=1e-3)
mmd.fit(toys.x_train, epochs=EPOCHS, batch_size=256, verbose=0)

fig, axes = plt.subplots(1, 4, figsize=(16, 4), sharex=True, sharey=True)
plotting.scatter_2d(toys.x_test, title="data", ax=axes[0])
for ax, (name, model) in zip(axes[1:], [("GAN", gan), ("WGAN-GP", wgan), ("MMD net", mmd)]):
    samples = model.sample(1000, seed=(1, 2))
    row = metrics.sample_quality(samples, toys)
    plotting.scatter_2d(
        samples,
        ax=ax,
        title=f"{name}: {row['modes_covered']}/8 modes, FD {row['fd']:.3f}",
    )
plotting.save(fig, f"{OUT}/lab5_models.png")

# %% [markdown]
# ## 8. Fréchet distance and KID on digits
#
# For images, FD and KID are computed on features of a classifier. `tfdgm.metrics` ships a
# small classifier of 8×8 digits (its penultimate layer has 64 units), so the numbers need
# no download. FD fits a Gaussian to each feature set:
# $\|\mu_1 - \mu_2\|^2 + \mathrm{Tr}(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2})$.
#
# ### Exercise 6
# Compute FD between the features of the digits' train and test splits with
# `scipy.linalg.sqrtm` and compare with `tfdgm.metrics.frechet_distance`.


# %%
def my_frechet_distance(f1, f2):
    raise NotImplementedError  # your code here


# %% Reference solution
def my_frechet_distance(f1, f2):  # noqa: F811
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


digits = tfdgm.data.load(os.environ.get("TFDGM_DIGITS", "digits") + "-continuous")
features = metrics.digits_classifier(digits.image_shape).features
f_train, f_test = features(digits.x_train), features(digits.x_test)
print(
    f"FD train vs test: mine {my_frechet_distance(f_train, f_test):.3f}, "
    f"library {metrics.frechet_distance(f_train, f_test):.3f}"
)

# %% [markdown]
# A DCGAN-style GAN (strided transposed convolutions, LeakyReLU discriminator) on the
# dequantized digits, with FD and KID against the test split. Train longer without
# `TFDGM_FAST` (or run `tfdgm train gan --dataset digits-continuous`) to see FD fall.

# %%
keras.utils.set_random_seed(0)
digit_gan = tfdgm.GAN.for_dataset(digits, latent_dim=16, seed=0)
digit_gan.compile_default(learning_rate=5e-4)
digit_gan.fit(digits.x_train, epochs=2 if FAST else 240, batch_size=64, verbose=0)
print(metrics.sample_quality(digit_gan, digits, reference=True))
samples = digit_gan.sample(32, seed=(1, 2))
fig = plotting.image_grid(samples, digits.image_shape, title="GAN samples")
plotting.save(fig, f"{OUT}/lab5_digits.png")

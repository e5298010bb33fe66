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
# # Lab 1 — Variational inference and the variational auto-encoder
#
# In this lab you will
# 1. derive the evidence lower bound (ELBO) and check it numerically;
# 2. estimate a KL divergence by Monte Carlo and compare it with its closed form;
# 3. train a VAE on binarized 8×8 digits with `tfdgm.VAE` and look at samples,
#    reconstructions and the latent space;
# 4. tighten the bound with importance weighting (IWAE) and estimate log p(x);
# 5. see what β does to the trade-off between reconstruction and KL.
#
# Every exercise has a reference solution right below it. Run the whole file as a script
# (`python labs/01_variational_inference_vae.py`) or open it as a notebook with Jupytext.
# `TFDGM_FAST=1` shrinks every training run so the lab finishes in seconds;
# `TFDGM_DIGITS=mnist5k` runs it on 5,000 real 28×28 MNIST digits instead of the 8×8 ones
# (`pip install -e ".[data]"`).

# %% [markdown]
# ## Setup

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfdgm
from tfdgm import plotting

tfd = tfp.distributions
FAST = os.environ.get("TFDGM_FAST") == "1"
OUT = os.environ.get("TFDGM_LAB_OUT", "lab_outputs")
os.makedirs(OUT, exist_ok=True)
EPOCHS = 2 if FAST else 60
# binarized 8x8 digits (pixel > 8 of the 0..16 levels), or "mnist5k" (28x28, pixel > 127)
digits = tfdgm.data.load(os.environ.get("TFDGM_DIGITS", "digits"))
SHAPE = digits.image_shape  # (8, 8) or (28, 28)
H, W = SHAPE
x_train, x_test = digits.x_train, digits.x_test
print(digits.description, x_train.shape, x_test.shape)

# %% [markdown]
# ## 1. The evidence lower bound
#
# A latent-variable model p(x, z) = p(z) p(x|z) has the marginal likelihood
# $\log p(x) = \log \int p(x|z) p(z)\, dz$, an integral we cannot compute for a neural
# decoder. For any distribution q(z|x),
#
# $$\log p(x) = \underbrace{\mathbb{E}_{q}\left[\log p(x|z)\right]
#   - \mathrm{KL}\left(q(z|x) \,\|\, p(z)\right)}_{\mathrm{ELBO}(x)}
#   + \mathrm{KL}\left(q(z|x) \,\|\, p(z|x)\right).$$
#
# *Derivation.* $\log p(x) = \mathbb{E}_q[\log p(x, z) - \log p(z|x)]$ because log p(x)
# does not depend on z; add and subtract $\log q(z|x)$ inside the expectation and group
# the terms. The last KL is ≥ 0, so the ELBO is a lower bound, tight when q(z|x) = p(z|x).
# The VAE maximizes the ELBO jointly over the decoder p(x|z) and the encoder q(z|x), with
# the reparameterization $z = \mu(x) + \sigma(x) \odot \epsilon$, $\epsilon \sim N(0, I)$,
# so that gradients flow through the sample.

# %% [markdown]
# ### Exercise 1 — Monte-Carlo KL
# Write `mc_kl(q, p, num_samples, seed)` that estimates KL(q‖p) = E_q[log q(z) − log p(z)]
# from samples of q, and compare it with TFP's closed form for two diagonal Normals.

# %%
def mc_kl(q, p, num_samples, seed):
    raise NotImplementedError  # your code here


# %% Reference solution
def mc_kl(q, p, num_samples, seed):  # noqa: F811
    z = q.sample(num_samples, seed=seed)
    return tf.reduce_mean(q.log_prob(z) - p.log_prob(z), axis=0)


q = tfd.MultivariateNormalDiag(loc=[1.0, -0.5], scale_diag=[0.5, 2.0])
p = tfd.MultivariateNormalDiag(loc=[0.0, 0.0], scale_diag=[1.0, 1.0])
for n in (10, 100, 10_000):
    print(f"S = {n:>6}: MC KL = {float(mc_kl(q, p, n, seed=(0, 1))):.4f}")
print(f"closed form  : {float(q.kl_divergence(p)):.4f}")

# %% [markdown]
# ## 2. Train a VAE on binarized digits
# `tfdgm.VAE` has a Normal encoder, a standard Normal prior and a Bernoulli decoder here
# (chosen from the data's support). Its `train_step` maximizes the ELBO; `fit` reports
# the loss (−ELBO), the reconstruction term and the KL.

# %%
vae = tfdgm.VAE.for_dataset(digits, latent_dim=2, hidden_units=(256, 128), seed=0)
vae.compile_default(learning_rate=1e-3)
history = vae.fit(x_train, epochs=EPOCHS, batch_size=64, validation_data=x_test, verbose=0)
plotting.save(plotting.training_curve(history.history), f"{OUT}/lab1_curve.png")
print({k: round(v[-1], 2) for k, v in history.history.items()})

# %%
fig = plotting.image_grid(vae.decode(vae.prior().sample(32, seed=(1, 1))).mean(), SHAPE,
                          title="decoder means of z ~ p(z)")
plotting.save(fig, f"{OUT}/lab1_samples.png")
pairs = np.stack([x_test[:16], vae.reconstruct(x_test[:16])], 1).reshape(32, -1)
fig = plotting.image_grid(pairs, SHAPE, title="test images | reconstructions")
plotting.save(fig, f"{OUT}/lab1_reconstructions.png")

# %% [markdown]
# With a 2-D latent space we can look at where the encoder puts the test digits, and decode
# a grid of z values to see how the decoder organizes the digits.

# %%
z_mean = vae.encode(x_test).mean().numpy()
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
axes[0].scatter(z_mean[:, 0], z_mean[:, 1], s=5)
axes[0].set_title("posterior means of test digits")
grid = np.stack(np.meshgrid(np.linspace(-2, 2, 10), np.linspace(-2, 2, 10)), -1).reshape(-1, 2)
images = vae.decode(grid.astype("float32")).mean().numpy().reshape(10, 10, H, W)
axes[1].imshow(images.transpose(0, 2, 1, 3).reshape(10 * H, 10 * W), cmap="gray_r")
axes[1].set_title("decoded latent grid")
plotting.save(fig, f"{OUT}/lab1_latent.png")

# %% [markdown]
# ### Exercise 2 — the ELBO by hand
# Using only `vae.encode(x)` (q(z|x)), `vae.decode(z)` (p(x|z)) and `vae.prior()`, write the
# one-sample ELBO with the analytic KL and check that it matches `vae.elbo(x, seed=...)`.

# %%
def my_elbo(vae, x, seed):
    raise NotImplementedError  # your code here


# %% Reference solution
def my_elbo(vae, x, seed):  # noqa: F811
    q = vae.encode(x)
    z = q.sample(1, seed=seed)  # (1, batch, L): the reparameterized sample
    return vae.decode(z).log_prob(x)[0] - q.kl_divergence(vae.prior())


ours = my_elbo(vae, x_test[:8], seed=(7, 7))
theirs = vae.elbo(x_test[:8], seed=(7, 7))
print("max |difference|:", float(tf.reduce_max(tf.abs(ours - theirs))))

# %% [markdown]
# ## 3. Importance weighting
# With k samples $z_i \sim q(z|x)$ and weights $w_i = p(x, z_i)/q(z_i|x)$,
# $\mathrm{IWAE}_k = \mathbb{E}[\log \frac{1}{k}\sum_i w_i]$ satisfies
# ELBO = IWAE₁ ≤ IWAE_k ≤ IWAE_{k+1} ≤ log p(x) (Burda et al., 2016): by Jensen's
# inequality, and because the average of more weights concentrates on p(x).
# `vae.log_prob(x, num_samples=S)` is this estimate with a large S.
#
# ### Exercise 3 — the bound tightens with k
# Plot the test-set average of IWAE_k for k = 1, 2, 5, 20, 100 against k (log axis), with
# a horizontal line at the `log_prob` estimate with S = 2000.

# %%
def iwae_curve(vae, x, ks):
    raise NotImplementedError  # your code here


# %% Reference solution
def iwae_curve(vae, x, ks):  # noqa: F811
    return [float(np.mean(vae.iwae(x, k, seed=(3, k)))) for k in ks]


ks = [1, 2, 5, 20, 100]
curve = iwae_curve(vae, x_test, ks)
log_p = float(np.mean(vae.log_prob(x_test, num_samples=200 if FAST else 2000, seed=(4, 4))))
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogx(ks, curve, "o-", label="IWAE_k")
ax.axhline(log_p, color="k", ls="--", label="log p(x) estimate")
ax.set_xlabel("k")
ax.set_ylabel("nats per image")
ax.legend()
plotting.save(fig, f"{OUT}/lab1_iwae.png")
print("IWAE_k:", np.round(curve, 3), " log p(x) ≈", round(log_p, 3))

# %% [markdown]
# ## 4. β-VAE
# Weighting the KL by β (`tfdgm.VAE(beta=...)`) trades reconstruction for a posterior that
# stays closer to the prior (Higgins et al., 2017).
#
# ### Exercise 4
# Train VAEs with β = 0.5 and β = 4 and compare their test reconstruction term and KL.
# Which one reconstructs better? Which one has the more informative latent code?

# %%
def train_beta(beta):
    raise NotImplementedError  # your code here


# %% Reference solution
def train_beta(beta):  # noqa: F811
    model = tfdgm.VAE.for_dataset(digits, latent_dim=2, hidden_units=(256, 128), beta=beta,
                                  seed=0)
    model.compile_default(learning_rate=1e-3)
    model.fit(x_train, epochs=EPOCHS, batch_size=64, verbose=0)
    return model.evaluate(x_test, verbose=0, return_dict=True)


for beta in (0.5, 4.0):
    result = train_beta(beta)
    print(f"beta = {beta}: reconstruction {result['reconstruction']:.2f}, "
          f"KL {result['kl']:.2f}")

# %% [markdown]
# A larger β lowers the KL (less information about x in z) and worsens the reconstruction.
#
# ## 5. Interpolation
# Decoding the straight line between two posterior means shows a smooth latent space.

# %%
path = vae.interpolate(x_test[0], x_test[1], steps=8)
fig = plotting.image_grid(path, SHAPE, title="interpolation")
plotting.save(fig, f"{OUT}/lab1_interpolation.png")
print("lab 1 done; figures in", OUT)

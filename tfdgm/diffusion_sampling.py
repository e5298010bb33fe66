"""Sampling and likelihood of a diffusion model: the DDPM and DDIM samplers, DDIM inversion,
the exact log-density of the probability-flow ODE, the samplers' quality, the run's
pictures and the export.

:class:`DiffusionSampling` is a mixin of :class:`tfdgm.models.diffusion.DDPM`; it uses the
model's ``predict(y_t, t)`` (yhat_0 and eps_hat from the EMA network), ``posterior``,
``_posterior_moments``, ``_rates``, ``_reverse_std``, ``schedule``, ``normalize`` and
``denormalize``.

Both samplers walk a subsequence 0 = tau_0 < tau_1 < ... < tau_S = T down from y_T ~ N(0, I)
in one compiled ``tf.while_loop``. The ancestral sampler draws y_s ~ p(y_s | y_t) (Ho et al.
Algorithm 2 at S = T, respaced as Nichol & Dhariwal do for S < T). DDIM (Song et al., 2021)
steps

    y_s = sqrt(abar_s) yhat_0 + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt(var(t, s)),

deterministic at eta = 0 (and invertible: :meth:`DiffusionSampling.encode`), the ancestral
sampler at eta = 1. The probability-flow ODE dy/du = -beta(u)/2 [y - eps_hat/sqrt(1 - abar(u))]
carries the same marginals (Song et al., 2021b); its log-density follows from the
instantaneous change of variables (:mod:`tfdgm.ode`). A class-conditional model's chains
and ODE are guided towards given labels (classifier-free guidance, ``predict(labels=...)``).

References:
    Ho, Jain & Abbeel, Denoising Diffusion Probabilistic Models, NeurIPS 2020.
    Song, Meng & Ermon, Denoising Diffusion Implicit Models, ICLR 2021.
    Nichol & Dhariwal, Improved Denoising Diffusion Probabilistic Models, ICML 2021.
    Song et al., Score-Based Generative Modeling through Stochastic Differential Equations, 2021b.
    Grathwohl et al., FFJORD, ICLR 2019 (Hutchinson's trace estimator).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfdgm import metrics, nets, ode

SAMPLERS = ("ddpm", "ddim")
#: ``log_prob(method="ode")`` takes the exact divergence (D backward passes) up to this many
#: dimensions and Hutchinson's estimator (one Rademacher probe per example) above.
EXACT_TRACE_MAX_DIM = 10


class DiffusionSampling:
    """DDPM/DDIM sampling, DDIM inversion, the probability-flow ODE, sample quality and the
    export endpoints of a diffusion model."""

    def timesteps(self, num_steps) -> tf.Tensor:
        """tau_0 = 0 < tau_1 < ... < tau_S = T, evenly spaced (rounded), int32 ``[S + 1]``."""
        steps = tf.clip_by_value(tf.cast(num_steps, tf.int32), 1, self.num_timesteps)
        grid = tf.linspace(0.0, float(self.num_timesteps), steps + 1)
        return tf.cast(tf.round(grid), tf.int32)

    def _chain(self, y, seed, num_steps, eta, labels, mode, keep=False, iterations=0, w=None):
        """Run a chain from y at tau_S (``"ancestral"``, ``"ddim"``) down to 0, or the DDIM
        encoder from y at 0 up to tau_S (``"encode"``), guided towards ``labels`` (None:
        unconditional) with scale ``w``. Returns y (and every state)."""
        guide = dict(labels=labels, guidance_scale=w)
        taus = self.timesteps(num_steps)
        steps = tf.shape(taus)[0] - 1
        states = tf.TensorArray(tf.float32, size=steps + 1, element_shape=y.shape)
        states = states.write(0, y) if keep else states

        def step(i, y, states):
            if mode == "encode":  # invert the DDIM step s <- t: solve for y_t by fixed point
                s, t = taus[i], taus[i + 1]
                ab_s, omab_s = self._rates(s)
                ab_t, omab_t = self._rates(t)
                y_s, y_t = y, y
                for _ in range(1 + iterations):  # first: eps_hat at (y_s, t)
                    _, eps = self.predict(y_t, t, clip=False, **guide)
                    y_t = (
                        tf.sqrt(ab_t / ab_s) * (y_s - tf.sqrt(omab_s) * eps) + tf.sqrt(omab_t) * eps
                    )
                y = y_t
            else:
                t, s = taus[steps - i], taus[steps - i - 1]
                y0, eps = self.predict(y, t, clip=None if mode != "decode" else False, **guide)
                noise = tf.random.stateless_normal(
                    tf.shape(y), tf.random.experimental.stateless_fold_in(seed, i)
                )
                _, _, var, _ = self._posterior_moments(t, s)
                ab_s, omab_s = self._rates(s)
                if mode == "ancestral":
                    sigma = tf.where(s > 0, self._reverse_std(t, s), 0.0)
                    mean = self.posterior(y, y0, t, s).mean()
                else:
                    sigma = eta * tf.sqrt(var)
                    mean = tf.sqrt(ab_s) * y0 + tf.sqrt(tf.maximum(omab_s - sigma**2, 0.0)) * eps
                y = mean + sigma * noise
            return i + 1, y, states.write(i + 1, y) if keep else states

        _, y, states = tf.while_loop(lambda i, *_: i < steps, step, (0, y, states))
        return (y, states.stack()) if keep else y

    def _compiled(self, mode: str, keep: bool = False, iterations: int = 0, w=None):
        """The chain as a graph function of (y, seed, steps, eta, labels); ``w`` (the guidance
        scale, default the model's) is fixed in it."""
        w = self.guidance_scale if w is None else float(w)
        chain = lambda y, seed, steps, eta, labels: self._chain(
            y, seed, steps, eta, labels, mode, keep, iterations, w
        )
        return self._function((mode, keep, iterations, w), chain)

    def _start(self, num_samples, seed, num_steps, sampler, eta, labels=None):
        """(chain mode, (y_T ~ N(0, I), chain seed, steps, eta, labels)) with the model's
        defaults; a conditional model's labels checked, broadcast, or drawn uniformly."""
        sampler = self.sampler if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        default = self.sample_steps or self.num_timesteps
        num_steps = tf.cast(default if num_steps is None else num_steps, tf.int32)
        num_steps = tf.where(num_steps > 0, num_steps, default)  # 0: the default (export)
        eta = self.eta if eta is None else eta
        seed = self._seed(seed)
        seed_T, seed_chain = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        y = tf.random.stateless_normal(tf.stack([num_samples, *self.event_shape]), seed_T)
        seed_labels = tf.random.experimental.stateless_fold_in(seed, 3)
        labels = nets.class_labels(self, labels, num_samples, seed_labels)
        args = (y, seed_chain, tf.cast(num_steps, tf.int32), tf.cast(eta, tf.float32), labels)
        return ("ancestral" if sampler == "ddpm" else "ddim"), args

    def sample(
        self, num_samples: int, seed=None, num_steps=None, sampler=None, eta=None,
        labels=None, guidance_scale=None,
    ):  # fmt: skip
        """Samples, float32 ``[num_samples, *event_shape]``: y_T ~ N(0, I), then ``num_steps``
        (default ``sample_steps`` or T) steps of the ancestral DDPM sampler (``"ddpm"``,
        respaced when fewer than T) or of DDIM (``"ddim"``, with ``eta``); the last yhat_0 is
        mapped to the data (discrete data: the nearest level, the decoder's mode). A
        conditional model draws ``labels`` (one for all, one per sample, or uniform when
        None), guided with ``guidance_scale`` (default the model's)."""
        mode, args = self._start(num_samples, seed, num_steps, sampler, eta, labels)
        return self.denormalize(self._compiled(mode, w=guidance_scale)(*args))

    def reverse_chain(
        self, num_samples: int, seed=None, num_steps=None, sampler=None, eta=None, labels=None
    ):
        """Every state of a sampling chain in data units (unquantized), ``[S + 1, n, ...]``,
        from y_T (index 0) to the sample (index S)."""
        mode, args = self._start(num_samples, seed, num_steps, sampler, eta, labels)
        _, states = self._compiled(mode, keep=True)(*args)
        return self.denormalize(states, quantize=False)

    def encode(self, x, num_steps=None, iterations: int = 2, labels=None) -> tf.Tensor:
        """DDIM (eta = 0) run forwards, data x -> y_T ``[batch, *event_shape]`` (unclipped):
        each step solves the decoder's step for y_t by ``iterations`` fixed-point iterations
        after the usual explicit guess (eps_hat taken at (y_s, t); ``iterations=0``)."""
        steps = tf.cast(num_steps or self.num_timesteps, tf.int32)
        y0 = self.normalize(self._prepare(x))
        return self._compiled("encode", iterations=int(iterations))(
            y0, tf.zeros([2], tf.int32), steps, tf.constant(0.0), nets.class_labels(self, labels)
        )

    def decode(self, y_T, num_steps=None, labels=None) -> tf.Tensor:
        """DDIM (eta = 0) from y_T to the data, unquantized and unclipped (inverse of encode)."""
        steps = tf.cast(num_steps or self.num_timesteps, tf.int32)
        y_T, labels = tf.cast(y_T, tf.float32), nets.class_labels(self, labels)
        y = self._compiled("decode")(y_T, tf.zeros([2], tf.int32), steps, tf.constant(0.0), labels)
        return self.denormalize(y, quantize=False)

    # ------------------------------------------------------------------ probability-flow ODE
    def ode_velocity(self, y, t, labels=None) -> tf.Tensor:
        """dy/dt = -beta(t)/2 [y - eps_hat(y, t)/sqrt(1 - abar(t))], continuous t in (0, T]."""
        _, eps = self.predict(y, t, clip=False, labels=labels)
        return -0.5 * self.schedule.beta_at(t) * (y - eps / tf.sqrt(self._rates(t)[1]))

    def ode_log_prob(
        self, x, seed=None, t_min: float = 1.0, exact_trace=None, rtol=1e-5, atol=1e-5,
        labels=None,
    ):  # fmt: skip
        """Exact log-density (nats, data units) of the probability-flow ODE model, ``[batch]``.

        The ODE carries N(0, I) at t = T to t = ``t_min`` (default 1, the first trained step:
        the density of the data blurred by N(0, 1 - abar_1) in diffusion units); the density
        follows from the instantaneous change of variables (:func:`tfdgm.ode.flow_log_prob`),
        with the exact divergence up to ``EXACT_TRACE_MAX_DIM`` dimensions (or as
        ``exact_trace`` says) and Hutchinson's estimator above. Real-valued data only. A conditional
        model's flow is guided towards ``labels`` (the model's ``guidance_scale``).
        """
        if self._levels:
            raise ValueError("ode_log_prob is a density of real-valued data; use the bound")
        exact = self.event_size <= EXACT_TRACE_MAX_DIM if exact_trace is None else exact_trace
        shape = [-1, *self.event_shape]
        labels = nets.class_labels(self, labels)

        def solve(y, seed, labels):
            velocity = lambda y, t: tf.reshape(
                self.ode_velocity(tf.reshape(y, shape), t, labels), tf.shape(y)
            )
            return ode.flow_log_prob(
                velocity, y, t_min, self.num_timesteps, ode.standard_normal_log_prob, exact,
                seed, rtol, atol,
            )  # fmt: skip

        y0 = tf.reshape(self.normalize(self._prepare(x)), [-1, self.event_size])
        key = ("ode", t_min, exact, rtol, atol, self.guidance_scale)
        log_p = self._function(key, solve)(y0, self._seed(seed), labels)
        return log_p - self.event_size * math.log(self.scale)

    # ------------------------------------------------------------------ reports and export
    def figures(self, dataset) -> dict:
        """The base pictures, plus the forward process on test images (noise levels across)
        and the reverse chain of the default sampler (its states across); a conditional
        model's samples one class a row."""
        figures = super().figures(dataset)
        if dataset.image_shape is None:
            return figures
        from tfdgm import plotting

        if self.num_classes is not None:
            labels = np.repeat(np.arange(self.num_classes), 8)
            samples = np.asarray(self.sample(len(labels), seed=(0, 1), labels=labels))
            figures["samples"] = plotting.image_grid(
                samples, dataset.image_shape, title="samples, one class a row", vmin=0
            )
        x = self.normalize(dataset.x_test[:8])
        ts = np.linspace(0, self.num_timesteps, 9).round().astype(np.int32)
        rows = [x] + [self.forward_marginal(x, t).sample(seed=(0, int(t))) for t in ts[1:]]
        grid = np.stack([self.denormalize(r, quantize=False) for r in rows], 1)
        vmax = self._levels - 1 if self._levels else 1
        figures["forward_process"] = plotting.image_grid(
            grid.reshape(-1, self.event_size), dataset.image_shape, ncols=9,
            title="forward process q(x_t | x_0), t = 0 ... T", vmin=0, vmax=vmax,
        )  # fmt: skip
        states = np.asarray(self.reverse_chain(8, seed=(0, 3)))
        frames = np.linspace(0, len(states) - 1, 9).round().astype(int)
        figures["reverse_chain"] = plotting.image_grid(
            np.swapaxes(states[frames], 0, 1).reshape(-1, self.event_size), dataset.image_shape,
            ncols=9, title="reverse chain, y_T ... x_0", vmin=0, vmax=vmax,
        )  # fmt: skip
        return figures

    def summary_metrics(self, dataset) -> dict:
        """FD/KID of the default sampler (and of DDIM with 50 steps) against the test split,
        with the train-vs-test reference; on 8 Gaussians and the checkerboard also
        KL(true || model) in nats from the probability-flow ODE."""
        out = metrics.sample_quality(self, dataset, reference=True)
        if (self.sampler, self.sample_steps, self.eta) == ("ddim", 50, 0.0):
            quality = out  # the default sampler is DDIM-50: the same samples
        else:
            n = len(dataset.x_test)
            ddim = self.sample(n, seed=(0, 0), num_steps=50, sampler="ddim", eta=0.0)
            quality = metrics.sample_quality(np.asarray(ddim), dataset)
        out.update({"fd_ddim50": quality["fd"], "kid_ddim50": quality["kid"]})
        if dataset.name in ("8gaussians", "checkerboard"):
            from tfdgm import data

            x = dataset.x_test
            log_p = np.asarray(self.log_prob(x, seed=(0, 0), method="ode"), np.float64)
            out["kl_true_model_ode"] = float(np.mean(data.toy_log_prob(dataset.name, x) - log_p))
        return out

    def export_endpoints(self):
        """``sample(n, seed)`` with the model's defaults; ``sample_ddpm`` and ``sample_ddim``
        ``(n, seed, num_steps)`` (``tfdgm sample RUN --sampler ddim --steps 50``); the bound
        as ``log_prob``; ``denoise(y_t, t)`` -> {"x0", "epsilon"} in diffusion units. A
        conditional model's endpoints each take ``labels`` int32 ``[batch]`` last (guided
        with its ``guidance_scale``)."""
        spec_n = tf.TensorSpec([], tf.int32, name="num_samples")
        spec_seed = tf.TensorSpec([2], tf.int32, name="seed")
        spec_steps = tf.TensorSpec([], tf.int32, name="num_steps")
        spec_y = tf.TensorSpec([None, *self.event_shape], tf.float32, name="y_t")
        spec_t = tf.TensorSpec([], tf.int32, name="t")
        conditional = self.num_classes is not None
        spec_labels = [tf.TensorSpec([None], tf.int32, name="labels")] if conditional else []

        def endpoint(fn, signature):  # a conditional model's labels: the last argument
            call = lambda *args: fn(*args[:-1], labels=args[-1]) if conditional else fn(*args)
            return call, [*signature, *spec_labels]

        samplers = {  # sample_ddpm(n, seed, num_steps), sample_ddim(n, seed, num_steps)
            f"sample_{name}": endpoint(
                lambda n, seed, steps, name=name, **y: self.sample(n, seed, steps, name, **y),
                [spec_n, spec_seed, spec_steps],
            )
            for name in SAMPLERS
        }
        denoise = lambda y_t, t, **y: dict(zip(("x0", "epsilon"), self.predict(y_t, t, **y)))
        return {
            "sample": endpoint(lambda n, seed, **y: self.sample(n, seed, **y), [spec_n, spec_seed]),
            **samplers,
            "log_prob": endpoint(
                lambda x, **y: self.elbo(x, seed=(0, 0), **y), [self.input_signature()]
            ),
            "denoise": endpoint(denoise, [spec_y, spec_t]),
        }

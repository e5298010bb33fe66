"""GAN training throughput: ``tfdgm.GAN.fit`` against a minimal hand-written TensorFlow loop.

Both train the same networks (an MLP generator and a LeakyReLU MLP discriminator, the
library's defaults) with the same non-saturating losses and Adam settings, one discriminator
step and one generator step per batch, on the same data, in one process. Prints real examples
per second for each and the ratio library / hand-written.

Usage::

    python benchmarks/bench_gan.py                 # 8 Gaussians, batch 256, 600 steps
    python benchmarks/bench_gan.py --steps-per-execution 20
    python benchmarks/bench_gan.py --dataset digits-continuous --steps 300

With these small networks the step itself takes about 2 ms on a CPU, so Keras' per-batch
dispatch in ``fit`` is visible; ``--steps-per-execution`` (Keras' ``compile`` option, which
runs several batches per compiled call) removes it.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfdgm import data, nets  # noqa: E402
from tfdgm.models.gan import GAN  # noqa: E402


def hand_written_loop(x, batch_size, steps, latent_dim, hidden_units, learning_rate):
    """Examples/s of a plain tf.function GAN step (no Keras fit, no metrics)."""
    event_size = x.shape[1]
    generator = nets.MLP(hidden_units, event_size)
    discriminator = nets.MLP(hidden_units, 1, activation="leaky_relu")
    generator(tf.zeros([1, latent_dim]))
    discriminator(tf.zeros([1, event_size]))
    g_opt = keras.optimizers.Adam(learning_rate, 0.5, 0.999)
    d_opt = keras.optimizers.Adam(learning_rate, 0.5, 0.999)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    seeds = keras.random.SeedGenerator(0)

    @tf.function
    def step(real):
        batch = tf.shape(real)[0]
        z = tf.random.stateless_normal([batch, latent_dim], tf.cast(seeds.next(), tf.int32))
        fake = generator(z)
        with tf.GradientTape() as tape:
            v_real, v_fake = discriminator(real)[:, 0], discriminator(fake)[:, 0]
            d_loss = tf.reduce_mean(tf.math.softplus(-v_real)) + tf.reduce_mean(
                tf.math.softplus(v_fake)
            )
        grads = tape.gradient(d_loss, discriminator.trainable_variables)
        d_opt.apply_gradients(zip(grads, discriminator.trainable_variables))
        z = tf.random.stateless_normal([batch, latent_dim], tf.cast(seeds.next(), tf.int32))
        with tf.GradientTape() as tape:
            g_loss = tf.reduce_mean(tf.math.softplus(-discriminator(generator(z))[:, 0]))
        grads = tape.gradient(g_loss, generator.trainable_variables)
        g_opt.apply_gradients(zip(grads, generator.trainable_variables))
        return d_loss, g_loss

    dataset = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x)).repeat().batch(batch_size)
    iterator = iter(dataset.prefetch(tf.data.AUTOTUNE))
    for _ in range(5):  # trace and warm up
        step(next(iterator))
    start = time.perf_counter()
    for _ in range(steps):
        out = step(next(iterator))
    float(out[0])
    return steps * batch_size / (time.perf_counter() - start)


def library_fit(x, batch_size, steps, latent_dim, hidden_units, learning_rate, per_execution=1):
    """Examples/s of GAN.fit over ``steps`` batches (after a short warm-up fit)."""
    model = GAN(event_shape=x.shape[1:], latent_dim=latent_dim, hidden_units=hidden_units, seed=0)
    model.compile_default(learning_rate=learning_rate, steps_per_execution=per_execution)
    dataset = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x)).repeat().batch(batch_size)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    model.fit(dataset, epochs=1, steps_per_epoch=per_execution * 5, verbose=0)  # warm up
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="8gaussians")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--hidden-units", default="128,128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=1,
        help="Keras steps_per_execution of the library's fit (batches per compiled call)",
    )
    args = parser.parse_args(argv)

    x = data.load(args.dataset).x_train
    x = x.reshape(len(x), -1).astype(np.float32)
    hidden = tuple(int(u) for u in args.hidden_units.split(","))
    common = (x, args.batch_size, args.steps, args.latent_dim, hidden, 2e-4)
    print(f"GAN on {args.dataset}: MLP {hidden}, latent {args.latent_dim}, batch {args.batch_size}")
    print(
        f"device: {tf.config.list_logical_devices()[-1].device_type}, {args.steps} steps, "
        f"steps_per_execution {args.steps_per_execution}"
    )
    ratios = []
    for repeat in range(args.repeats):
        hand = hand_written_loop(*common)
        lib = library_fit(*common, per_execution=args.steps_per_execution)
        ratios.append(lib / hand)
        print(
            f"  run {repeat}: hand-written {hand:10.0f} ex/s   tfdgm fit {lib:10.0f} ex/s   "
            f"ratio {lib / hand:.2f}"
        )
    print(f"median ratio tfdgm / hand-written: {np.median(ratios):.2f}")


if __name__ == "__main__":
    main()

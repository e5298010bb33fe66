"""The peers a user would pick instead, each run in its own process (PyTorch is never
imported beside TensorFlow: ``torch._dynamo`` after TensorFlow crashed the old scripts).

    python -m benchmarks.peers vae-torch|vae-torch-compile|rbm-sklearn|realnvp-normflows \
        BATCH STEPS ROUNDS [THREADS]

THREADS (default: every core) sets PyTorch's intra-op threads: on this shared 2-core
machine, under load, PyTorch with 2 threads ran normflows' RealNVP 25-55x slower than
with 1 (its worker threads spin while other processes hold the cores).

prints one JSON line: ``{"times": [seconds per step of each round], "load": ...}``.
"""

from __future__ import annotations

import json
import os
import sys
import time

from benchmarks import _timing


def vae_torch(batch: int, compiled: bool):
    import torch

    from benchmarks.suite_shapes import VAE_SIZES, make_vae_data

    torch.manual_seed(0)

    def mlp(sizes):
        layers = []
        for i, (a, b) in enumerate(sizes):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 1:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)

    enc, dec = mlp(VAE_SIZES[:3]), mlp(VAE_SIZES[3:])
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, 1e-3)

    def step(xb):
        mu, raw = enc(xb).chunk(2, -1)
        sigma = torch.nn.functional.softplus(raw) + 1e-3
        z = mu + sigma * torch.randn_like(mu)
        logits = dec(z)
        rec = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, xb, reduction="none"
        ).sum(-1)
        kl = 0.5 * (mu**2 + sigma**2 - 1 - 2 * sigma.log()).sum(-1)
        loss = -(rec - kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = torch.compile(step)
    x = torch.from_numpy(make_vae_data(max(8 * batch, 4096)))
    position = [0]

    def one():
        j = position[0]
        position[0] = (j + batch) % (len(x) - batch)
        return step(x[j : j + batch])

    return _timing.loop_session(one, lambda loss: float(loss.detach()))


def rbm_sklearn(batch: int):
    from sklearn.neural_network import BernoulliRBM

    from benchmarks.suite_shapes import RBM_SHAPE, make_rbm_data

    V, H, LR = RBM_SHAPE
    x = make_rbm_data(64 * batch)  # a multiple of the batch: equal slices
    rbm = BernoulliRBM(n_components=H, learning_rate=LR, batch_size=batch, n_iter=1, random_state=0)
    rbm.fit(x[:batch])  # initialize

    def run(steps: int) -> float:  # partial_fit: one PCD-1 step per call, no re-validation
        start = time.perf_counter()
        for i in range(steps):
            j = (i * batch) % len(x)
            rbm.partial_fit(x[j : j + batch])
        return time.perf_counter() - start

    return run


def realnvp_normflows(batch: int):
    """normflows' RealNVP with tfdgm's default couplings (8 layers, MLP 1-64-64-2 with
    zero-initialized last layer, a swap between layers, N(0, I) base), Adam at 2e-3
    (tfdgm's flow default), two moons."""
    import normflows as nf
    import torch

    from benchmarks.suite_shapes import make_moons

    torch.manual_seed(0)
    flows = []
    for _ in range(8):
        flows.append(nf.flows.AffineCouplingBlock(nf.nets.MLP([1, 64, 64, 2], init_zeros=True)))
        flows.append(nf.flows.Permute(2, mode="swap"))
    model = nf.NormalizingFlow(nf.distributions.base.DiagGaussian(2, trainable=False), flows)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.from_numpy(make_moons(max(8 * batch, 4096)))
    position = [0]

    def one():
        j = position[0]
        position[0] = (j + batch) % (len(x) - batch)
        loss = model.forward_kld(x[j : j + batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return _timing.loop_session(one, lambda loss: float(loss.detach()))


def main(argv):
    name, batch, steps, rounds = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    threads = int(argv[4]) if len(argv) > 4 else os.cpu_count() or 1
    if name != "rbm-sklearn":
        import torch

        torch.set_num_threads(threads)
    session = {
        "vae-torch": lambda: vae_torch(batch, False),
        "vae-torch-compile": lambda: vae_torch(batch, True),
        "rbm-sklearn": lambda: rbm_sklearn(batch),
        "realnvp-normflows": lambda: realnvp_normflows(batch),
    }[name]()
    times = _timing.round_robin({name: session}, steps, rounds)[name]
    print(json.dumps({"times": times, "load": _timing.load()}))


if __name__ == "__main__":
    main(sys.argv[1:])

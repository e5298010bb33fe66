"""The ``tf.distribute`` strategies of ``tfdgm train --strategy`` (see docs/distribute.md).

One process (TensorFlow's default strategy), every local GPU (``MirroredStrategy``) or one
worker of the cluster that ``TF_CONFIG`` describes (``MultiWorkerMirroredStrategy``). A
:class:`tfdgm.runs.Run` makes its strategy first, then builds and compiles the model in
its scope; ``fit`` splits each global batch over the replicas.

>>> check_strategy("mirrored")
'mirrored'
"""

from __future__ import annotations

import os

from tfdgm.settings import RunError

#: ``tfdgm train --strategy``: one process (TensorFlow's default strategy), every local GPU
#: (``MirroredStrategy``) or one worker of the cluster that ``TF_CONFIG`` describes
#: (``MultiWorkerMirroredStrategy``; see docs/distribute.md).
STRATEGIES = ("default", "mirrored", "multi-worker")


def check_strategy(name: str) -> str:
    """``name`` if it is one of :data:`STRATEGIES`, else RunError."""
    if name not in STRATEGIES:
        raise RunError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    return name


def make_strategy(name: str = "default"):
    """The ``tf.distribute`` strategy of :data:`STRATEGIES` called ``name``. Create it
    before any other TensorFlow op of the process (multi-worker needs that).

    Raises:
        RunError: an unknown name, or ``multi-worker`` without ``TF_CONFIG``.
    """
    import tensorflow as tf

    if check_strategy(name) == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise RunError("--strategy multi-worker needs the cluster in TF_CONFIG (unset)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_id(strategy) -> int | None:
    """None for this process if it writes the run (one process, or the cluster's chief:
    worker 0 when there is no chief), else its worker index."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or is_chief(resolver):
        return None
    return resolver.task_id


def is_chief(resolver) -> bool:
    """Whether this task is the cluster's chief (worker 0 when there is no chief)."""
    if resolver.task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def check_replica_batch(model, size: int | None, what: str = "the training data") -> None:
    """Refuse a first batch of ``size`` examples that the replicas of ``model``'s
    ``MirroredStrategy`` cannot split evenly, with a ValueError that says so.

    Keras 3 builds a model under a strategy from the first batch of ``fit`` and
    ``evaluate``, reduced over the replicas (the mean of the per-replica slices), and that
    reduction fails deep inside TensorFlow (an ``AddN`` shape error) when the slices differ
    in size: a global batch of 33 on 2 replicas. Later short batches (an epoch's last)
    are fine. ``size`` is None when unknown (nothing is checked).
    """
    import tensorflow as tf

    strategy = model.distribute_strategy
    replicas = strategy.num_replicas_in_sync
    if size is None or replicas < 2 or not isinstance(strategy, tf.distribute.MirroredStrategy):
        return
    if size % replicas:
        raise ValueError(
            f"{type(model).__name__}: the first batch of {what} has {size} examples, which "
            f"the {replicas} replicas of the MirroredStrategy cannot split evenly (Keras "
            f"builds the model from it); use a batch size, and a data size if smaller, "
            f"divisible by {replicas}"
        )

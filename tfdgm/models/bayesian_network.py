"""Discrete Bayesian networks: a DAG of conditional probability tables, fitted by counting.

A Bayesian network over discrete variables x_1..x_m (x_i in {0..K_i - 1}) factorizes the
joint along a directed acyclic graph with parents pa(i):

    p(x) = prod_i p(x_i | x_pa(i)),     p(x_i = k | x_pa(i) = j) = theta_ijk,

one table per variable with prod_{l in pa(i)} K_l rows of K_i entries: the network holds
sum_i K_i prod_{l in pa(i)} K_l probabilities, of which sum_i (K_i - 1) prod_{l in pa(i)} K_l
are free (each row sums to 1). The chain rule p(x) = prod_i p(x_i | x_1..x_{i-1}) with no
independence assumed holds sum_i K_i prod_{l<i} K_l probabilities (prod_i K_i - 1 free).

Estimation by counting: with n_ijk the number of examples with x_i = k and x_pa(i) = j and
a symmetric Dirichlet(alpha) pseudo-count on every row,

    theta_ijk = (n_ijk + alpha) / (n_ij + K_i alpha)       (alpha = 0: maximum likelihood),

the posterior mean under a Dirichlet(alpha, ..., alpha) prior (Heckerman, 1995). The counts
are statistics-based training (``batch_statistics`` / ``apply_statistics``): each epoch sets
the tables from that epoch's summed counts, so every epoch gives the same estimate.

The joint is a ``tfd.JointDistributionNamed`` of Categoricals, one per variable, each
reading its row of the table from its parents' values: ``log_prob`` is exact, ``sample``
ancestral (parents before children). ``query(target, evidence)`` computes
p(target | evidence) = sum_rest p(target, rest, evidence) / sum_{target, rest} p(...) by
enumerating every configuration of the unobserved variables.

References:
    Pearl, Probabilistic Reasoning in Intelligent Systems, 1988.
    Heckerman, A tutorial on learning with Bayesian networks, MSR-TR-95-06, 1995.
    Koller & Friedman, Probabilistic Graphical Models, 2009, Ch. 3 and 17.
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import registry
from tfdgm.base import PACKAGE, GenerativeModel

tfd = tfp.distributions

#: Most configurations of the unobserved variables ``query`` enumerates.
MAX_QUERY_CONFIGURATIONS = 2**20
STRUCTURES = ("grid", "chain", "independent")


def _topological_order(names: list[str], parents: dict[str, tuple]) -> list[str]:
    """Parents before children (Kahn's algorithm); ValueError naming a cycle if any."""
    order, placed = [], set()
    while len(order) < len(names):
        ready = [v for v in names if v not in placed and set(parents[v]) <= placed]
        if not ready:
            # walk parent links among the unplaced variables until one repeats: a cycle
            path, node = [], next(v for v in names if v not in placed)
            while node not in path:
                path.append(node)
                node = next(p for p in parents[node] if p not in placed)
            cycle = path[path.index(node) :] + [node]
            raise ValueError(
                "BayesianNetwork: parents must form a directed acyclic graph; cycle "
                + " -> ".join(reversed(cycle))
            )
        order += ready
        placed |= set(ready)
    return order


def _row_function(parents: tuple[str, ...], table: tf.Tensor):
    """A callable with one argument per parent (``JointDistributionNamed`` reads the graph
    from argument names) returning Categorical(theta[x_pa])."""

    def categorical(*args, **kwargs):
        values = {**dict(zip(parents, args)), **kwargs}
        rows = tf.stack([tf.cast(values[p], tf.int32) for p in parents], axis=-1)
        return tfd.Categorical(probs=tf.gather_nd(table, rows), dtype=tf.int32)

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    categorical.__signature__ = inspect.Signature([inspect.Parameter(p, kind) for p in parents])
    return categorical


@registry.register(
    "bayes-net",
    family="graphical",
    datasets=("digits-crop8", "digits", "digits-categorical"),
    training=dict(epochs=1, batch_size=256),
    hparams=dict(structure="grid", pseudo_count=1.0),
    tiny=dict(structure="grid", pseudo_count=1.0),
    description="discrete Bayesian network (tables by counting; pixel grid or chain DAG)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class BayesianNetwork(GenerativeModel):
    """A DAG of conditional probability tables over discrete variables (module docstring).

    Events are vectors of the variables' levels, in the order of ``cardinalities``.

    Args:
        parents: ``{variable: [its parents]}``; a variable left out has no parents.
        cardinalities: ``{variable: K}`` for every variable, in column order (names are
            Python identifiers).
        pseudo_count: alpha >= 0, the Dirichlet pseudo-count added to every table entry.
        seed: seed of ``sample``.

    Raises:
        ValueError: before any training, for a cycle, an unknown variable, a cardinality
            below 2; ``fit``/``log_prob`` refuse a level outside a variable's cardinality.

    >>> net = BayesianNetwork(
    ...     parents={"salary": ["age", "marital"], "y": ["salary", "gender"]},
    ...     cardinalities={"age": 3, "salary": 3, "gender": 2, "marital": 2, "y": 2})
    >>> net.num_probabilities(), net.num_probabilities("chain")
    (37, 138)
    """

    density = "exact"
    weighted_statistics = True  # counts of weighted examples: a weight of 2 counts twice

    def __init__(
        self,
        parents: Mapping[str, Sequence[str]] | None = None,
        cardinalities: Mapping[str, int] | None = None,
        pseudo_count: float = 1.0,
        seed: int | None = None,
        **kwargs,
    ):
        if not cardinalities:
            raise ValueError("BayesianNetwork needs cardinalities={variable: K, ...}")
        names = list(cardinalities)
        for name in names:
            if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
                raise ValueError(
                    f"BayesianNetwork: variable names must be identifiers, got {name!r}"
                )
            if int(cardinalities[name]) < 2:
                raise ValueError(
                    f"BayesianNetwork: variable {name!r} needs cardinality >= 2, "
                    f"got {cardinalities[name]}"
                )
        parents = {name: tuple(ps) for name, ps in dict(parents or {}).items()}
        for child, ps in parents.items():
            for name in (child, *ps):
                if name not in cardinalities:
                    raise ValueError(
                        f"BayesianNetwork: unknown variable {name!r} in parents "
                        f"({child!r}: {list(ps)}); the variables are {names}"
                    )
            if len(set(ps)) != len(ps):
                raise ValueError(f"BayesianNetwork: {child!r} lists a parent twice: {list(ps)}")
        if float(pseudo_count) < 0:
            raise ValueError(f"pseudo_count must be >= 0, got {pseudo_count}")
        ks = [int(cardinalities[v]) for v in names]
        binary = max(ks) == 2
        super().__init__(
            (len(names),),
            support="binary" if binary else "categorical",
            num_categories=max(ks),
            seed=seed,
            **kwargs,
        )
        self.variables_order = names
        self.cardinalities = dict(zip(names, ks))
        self.parents = {v: parents.get(v, ()) for v in names}
        self.pseudo_count = float(pseudo_count)
        self.order = _topological_order(names, self.parents)
        self.build()

    @classmethod
    def for_dataset(cls, dataset, structure: str = "grid", **hparams):
        """A network over ``dataset``'s dimensions ``x0, x1, ...`` (K = its categories):
        ``"grid"`` (each pixel's parents are the pixels above and to its left; a chain
        without an image shape), ``"chain"`` (x_{i-1} -> x_i) or ``"independent"``."""
        if structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
        size = int(np.prod(dataset.event_shape))
        names = [f"x{i}" for i in range(size)]
        parents = {}
        image = dataset.image_shape
        if structure == "grid" and image is not None and int(np.prod(image[:2])) == size:
            width = image[1]
            for i in range(size):
                above, left = i - width, i - 1 if i % width else -1
                parents[names[i]] = [names[j] for j in (above, left) if j >= 0]
        elif structure != "independent":
            parents = {names[i]: [names[i - 1]] for i in range(1, size)}
        return cls(parents, {n: dataset.num_categories for n in names}, **hparams)

    # ----------------------------------------------------------------- structure
    def _table_shape(self, name: str) -> list[int]:
        return [self.cardinalities[p] for p in self.parents[name]] + [self.cardinalities[name]]

    def _build(self):
        self.counts = {
            name: self.add_weight(
                shape=self._table_shape(name),
                initializer="zeros",
                dtype="float32",
                trainable=False,
                aggregation="only_first_replica",
                name=f"counts_{name}",
            )
            for name in self.variables_order
        }

    def num_probabilities(self, factorization: str = "network") -> int:
        """Table entries: sum_i K_i prod_{l in pa(i)} K_l (``"network"``), or
        sum_i K_i prod_{l<i} K_l for the chain rule in column order (``"chain"``)."""
        return sum(int(np.prod(s)) for s in self._shapes(factorization))

    def num_free_parameters(self, factorization: str = "network") -> int:
        """Free parameters: sum_i (K_i - 1) prod_{l in pa(i)} K_l (``"network"``), or
        prod_i K_i - 1 (``"chain"``)."""
        return sum(int(np.prod(s[:-1])) * (s[-1] - 1) for s in self._shapes(factorization))

    def _shapes(self, factorization: str) -> list[list[int]]:
        if factorization == "network":
            return [self._table_shape(v) for v in self.variables_order]
        if factorization == "chain":
            ks = list(self.cardinalities.values())
            return [ks[: i + 1] for i in range(len(ks))]
        raise ValueError(f"factorization must be 'network' or 'chain', got {factorization!r}")

    # ----------------------------------------------------------------- tables
    def table(self, name: str) -> tf.Tensor:
        """theta for ``name``: float32 ``[K_pa1, ..., K_pak, K_i]``, rows summing to 1:
        (n + alpha) / (sum_k n + K alpha); a row never counted (alpha = 0) is uniform."""
        counts = tf.convert_to_tensor(self.counts[name]) + self.pseudo_count
        total = tf.reduce_sum(counts, axis=-1, keepdims=True)
        uniform = tf.fill(tf.shape(counts), 1.0 / self.cardinalities[name])
        return tf.where(total > 0, counts / tf.maximum(total, 1e-30), uniform)

    def distribution(self) -> tfd.JointDistributionNamed:
        """The joint as ``tfd.JointDistributionNamed({variable: Categorical, ...})``."""
        model = {}
        for name in self.order:
            table, ps = self.table(name), self.parents[name]
            if ps:
                model[name] = _row_function(ps, table)
            else:
                model[name] = tfd.Categorical(probs=table, dtype=tf.int32)
        return tfd.JointDistributionNamed(model)

    def _as_dict(self, x) -> dict[str, tf.Tensor]:
        levels = tf.cast(tf.reshape(x, [-1, self.event_size]), tf.int32)
        return {name: levels[:, i] for i, name in enumerate(self.variables_order)}

    # ----------------------------------------------------------------- contract
    def validate(self, x):
        """The base's checks, then every column against its own cardinality."""
        x = super().validate(x)
        for i, name in enumerate(self.variables_order):
            k = self.cardinalities[name]
            bad = x[:, i] >= k
            if bad.any():
                raise ValueError(
                    f"{type(self).__name__}: variable {name!r} (column {i}) has {k} levels "
                    f"0..{k - 1}, got level(s) {np.unique(x[bad, i])[:5].tolist()}"
                )
        return x

    def log_prob(self, x, **kwargs):
        """log p(x) = sum_i log theta_i[x_pa(i), x_i], float32 ``[batch]``."""
        return self.distribution().log_prob(self._as_dict(self._prepare(x)))

    def sample(self, num_samples: int, seed=None):
        """Ancestral sampling, parents before children: float32 ``[n, m]``."""
        draws = self.distribution().sample(num_samples, seed=self._seed(seed))
        return tf.cast(tf.stack([draws[v] for v in self.variables_order], axis=-1), tf.float32)

    def example_objective(self, x, training=False):
        return {"loss": -self.log_prob(x)}  # -log p(x), [batch]

    def batch_statistics(self, x, labels=None, weights=None):
        """The batch's counts n_ijk for every table (a one-hot scatter per variable), each
        example counted ``weights`` times (float32 ``[batch]``; once if None)."""
        values = self._as_dict(x)
        stats = {}
        for name in self.variables_order:
            shape = self._table_shape(name)
            index = tf.zeros_like(values[name])
            for p, k in zip((*self.parents[name], name), shape):
                index = index * k + values[p]  # row-major flat index into the table
            counted = tf.ones_like(index, tf.float32) if weights is None else weights
            flat = tf.math.unsorted_segment_sum(counted, index, int(np.prod(shape)))
            stats[name] = tf.reshape(flat, shape)
        return stats

    def apply_statistics(self, stats):
        """Every table's counts <- the epoch's summed counts."""
        for name, total in stats.items():
            self.counts[name].assign(total)

    # ----------------------------------------------------------------- inference
    def query(self, target, evidence: Mapping[str, int] | None = None) -> np.ndarray:
        """Exact posterior p(target | evidence) by enumeration of the unobserved variables.

        Args:
            target: a variable name, or a list of names.
            evidence: ``{variable: observed level}``.

        Returns:
            float64 probabilities of shape ``[K_t1, ...]`` (one axis per target), summing
            to 1.

        Raises:
            ValueError: an unknown variable or level, a target also in the evidence,
                evidence of probability 0, or more than ``MAX_QUERY_CONFIGURATIONS``
                configurations to enumerate (the message gives the number).
        """
        targets = [target] if isinstance(target, str) else list(target)
        evidence = dict(evidence or {})
        for name in (*targets, *evidence):
            if name not in self.cardinalities:
                raise ValueError(
                    f"query: unknown variable {name!r}; variables: {self.variables_order}"
                )
        for name, level in evidence.items():
            if not 0 <= int(level) < self.cardinalities[name] or int(level) != level:
                raise ValueError(
                    f"query: evidence {name}={level} outside 0..{self.cardinalities[name] - 1}"
                )
        if set(targets) & set(evidence):
            raise ValueError(
                f"query: {sorted(set(targets) & set(evidence))} both target and evidence"
            )
        free = [v for v in self.variables_order if v not in evidence]
        size = int(np.prod([self.cardinalities[v] for v in free], dtype=object))
        if size > MAX_QUERY_CONFIGURATIONS:
            raise ValueError(
                f"query: enumerating the {len(free)} unobserved variables means {size} "
                f"configurations, more than {MAX_QUERY_CONFIGURATIONS}; observe more "
                "variables or use approximate inference (sampling)"
            )
        grid = np.indices([self.cardinalities[v] for v in free]).reshape(len(free), -1).T
        configs = np.zeros((len(grid), self.event_size), np.float32)
        for i, name in enumerate(self.variables_order):
            configs[:, i] = evidence[name] if name in evidence else grid[:, free.index(name)]
        log_p = np.asarray(self.log_prob(tf.constant(configs)), np.float64)
        if not np.isfinite(log_p).any():
            raise ValueError(f"query: the evidence {evidence} has probability 0")
        weights = np.exp(log_p - log_p.max())
        shape = [self.cardinalities[t] for t in targets]
        index = np.ravel_multi_index(
            [configs[:, self.variables_order.index(t)].astype(int) for t in targets], shape
        )
        posterior = np.bincount(index, weights=weights, minlength=int(np.prod(shape)))
        return (posterior / posterior.sum()).reshape(shape)

    def summary_metrics(self, dataset) -> dict:
        """Table entries and free parameters of the network and of the chain rule."""
        return {
            "num_probabilities": self.num_probabilities(),
            "num_free_parameters": self.num_free_parameters(),
            "chain_rule_num_probabilities": self.num_probabilities("chain"),
            "chain_rule_num_free_parameters": self.num_free_parameters("chain"),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "parents": {v: list(ps) for v, ps in self.parents.items() if ps},
            "cardinalities": dict(self.cardinalities),
            "pseudo_count": self.pseudo_count,
        }

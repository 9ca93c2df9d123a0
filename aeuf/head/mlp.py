"""A small ReLU MLP reward on a batch of rows (vmap it over members).

params: list of layers {"w": f32[in, out], "b": f32[out]}; the last layer has out = 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def init_mlp(key: jax.Array, dim: int, hidden: tuple[int, ...]) -> list[dict]:
    """One member's parameters: He-normal hidden layers, LeCun-normal output, zero biases.

    The output layer is not zeroed, so each member starts as a different random function:
    the spread of the members off the labelled data is the ensemble's prior uncertainty.
    """
    sizes = (int(dim), *(int(h) for h in hidden), 1)
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        gain = 1.0 if i == len(sizes) - 2 else 2.0
        w = jax.random.normal(k, (n_in, n_out), jnp.float32) * (gain / n_in) ** 0.5
        layers.append({"w": w, "b": jnp.zeros((n_out,), jnp.float32)})
    return layers


def hidden(params: list[dict], x: jax.Array) -> jax.Array:
    """Last hidden layer of one member: x f32[B, D] -> f32[B, H] (H = the last hidden width)."""
    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"][None, :])
    return h


def rewards(params: list[dict], x: jax.Array) -> jax.Array:
    """Rewards of many responses under one member: x f32[B, D] -> f32[B]."""
    last = params[-1]
    return hidden(params, x) @ last["w"][:, 0] + last["b"][0]


def init_precisions(dim: int, hidden: tuple[int, ...]) -> tuple[float, ...]:
    """Per layer, 1 / (the variance init_mlp draws its weights from) = fan_in / gain."""
    sizes = (int(dim), *(int(h) for h in hidden))
    return tuple(n / (1.0 if i == len(sizes) - 1 else 2.0) for i, n in enumerate(sizes))


def sq_dist(params: list[dict], anchor: list[dict], scales: tuple[float, ...] | None = None):
    """sum over layers l of scales[l] * ||w_l - w0_l||^2 (weights and biases) of one member:
    f32[]; scales None = 1 for every layer."""
    total = 0.0
    for i, (layer, start) in enumerate(zip(params, anchor, strict=True)):
        s = 1.0 if scales is None else scales[i]
        total = total + s * sum(jnp.sum((layer[k] - start[k]) ** 2) for k in layer)
    return total
